"""Submission: pack a run's generations into the competition zip and check any such zip."""
