"""The engine: routing (Router: the shipped head over the embedder, or a fine-tuned IntentClassifier), reading
(Reader), and the Assistant that answers a message."""
