"""The guide's datastore API for custom import scripts (`deepview.datastore`, in our package).

A script written for eIQ Portal runs with only ``import deepview.datastore as ds`` changed to
``from eiq_lab import datastore as ds``.
"""

from .project import Annotation, Label, Project, ProjectImage, create_project, open_project

__all__ = ["Annotation", "Label", "Project", "ProjectImage", "create_project", "open_project"]
