"""The lab: training and evaluating models (the readers, the intent router, the answer ranker). It imports the
engine; the engine never imports it, and of the doors only the CLI's training commands (`train-reader`,
`train-intent`, `eval-reader`, `eval-intent`, `train-ranker`, and `calibrate --routing` / `setup`, which refit the
router's head with the user's corrections) do."""
