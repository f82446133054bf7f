"""The engine: routing (IntentClassifier), reading (Reader), and the Assistant that answers a message."""
