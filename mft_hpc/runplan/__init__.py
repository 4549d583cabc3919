"""What a run consists of, read back from its run directory: the members, each stage's elements, where
they write and when they are done (``plan.py``), the name of one element (``key.py``), and the record
of what was submitted (``runfile.py``)."""
