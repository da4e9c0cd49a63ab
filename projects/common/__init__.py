"""Augmentation code shared by the dataset projects (only the standard library and Pillow).

The build puts ``projects/`` on ``PYTHONPATH``, so a project's script imports it as
``from common.paste import …``; on an augmentation host it arrives beside the project.
"""
