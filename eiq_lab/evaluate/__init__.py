"""Evaluation: a run's model on a project's test group (classification: confusion matrix, precision,
recall; detection: VOC mAP@0.5, COCO mAP@[.5:.95], per-class AP, precision-recall curves)."""

from .detection import COCO_IOUS, DetectionReport, ImageBoxes, detection_metrics
from .runs import ClassificationReport, classification_report, evaluate_run

__all__ = [
    "COCO_IOUS",
    "ClassificationReport",
    "DetectionReport",
    "ImageBoxes",
    "classification_report",
    "detection_metrics",
    "evaluate_run",
]
