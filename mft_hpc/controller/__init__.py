"""The controller: plans, submits and watches a run's jobs; its state lives in ``state.StateStore``."""
