"""Evaluation metrics: detection (VOC mAP@0.5, COCO mAP@[.5:.95], per-class AP, precision-recall)."""

from .detection import COCO_IOUS, DetectionReport, ImageBoxes, detection_metrics

__all__ = ["COCO_IOUS", "DetectionReport", "ImageBoxes", "detection_metrics"]
