"""The doors: every way an application reaches the engine. Each catches `spanqa.errors.SpanqaError`."""
