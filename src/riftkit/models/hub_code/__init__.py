"""Code shipped inside an exported model folder (``riftkit export``), for ``transformers`` to run with
``trust_remote_code=True``. riftkit itself never runs it: it reads an exported folder's config.json and
weights into its own Classifier (models/export.py)."""
