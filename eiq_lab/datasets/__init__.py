"""Dataset importers and exporters: Pascal VOC, structured folders, TFDS, COCO and YOLO.

Each format module reads its layout into one shared `ImportSession` (one transaction, one report).
"""
