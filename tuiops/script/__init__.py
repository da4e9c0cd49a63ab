"""Headless scripts: named steps of tuiops commands, validated, run and recorded (``tuiops run``)."""
