"""Evaluation: a model on a project's test group (classification: confusion matrix with a softmax threshold,
precision, recall; detection: VOC mAP@0.5, COCO mAP@[.5:.95], per-class AP, precision-recall curves)."""

from .classification import BACKGROUND, ClassificationReport, ClassificationResults, classification_report
from .detection import COCO_IOUS, DetectionReport, ImageBoxes, detection_metrics
from .executors import Executor, open_model
from .runs import Subject, evaluate_run, model_subject, run_subject

__all__ = [
    "BACKGROUND",
    "COCO_IOUS",
    "ClassificationReport",
    "ClassificationResults",
    "DetectionReport",
    "Executor",
    "ImageBoxes",
    "Subject",
    "classification_report",
    "detection_metrics",
    "evaluate_run",
    "model_subject",
    "open_model",
    "run_subject",
]
