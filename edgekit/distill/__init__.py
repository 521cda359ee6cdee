"""Distillation: teacher training, Hinton KD and black-box KD, evaluation report."""
