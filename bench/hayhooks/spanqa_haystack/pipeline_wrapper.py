"""The side-by-side benchmark's Haystack pipeline (bench/systems.py: HaystackSystem), served by Hayhooks, so that
`python -m bench.serving --hayhooks` measures it over HTTP beside `spanqa serve`.

    SPANQA_BENCH_DATA=FILE.json hayhooks run --pipelines-dir bench/hayhooks --additional-python-path .

POST /spanqa_haystack/run {"question": "..."} → the answer, its score and whether the pipeline abstained.
"""

from __future__ import annotations

import os
from pathlib import Path

from hayhooks import BasePipelineWrapper


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        from transformers import AutoTokenizer

        from bench.qa_data import build_bench_set
        from bench.systems import HaystackSystem
        from spanqa.settings import Settings

        data = Path(os.environ["SPANQA_BENCH_DATA"])
        bench = build_bench_set(data, AutoTokenizer.from_pretrained(Settings.from_env().embedder_path), holdout=0.0)
        self.system = HaystackSystem(Settings.from_env().reader_path, top_k=5)
        self.system.index(bench)
        self.pipeline = self.system  # Hayhooks expects a pipeline attribute; the system runs the components

    def run_api(self, question: str) -> dict:
        """Answer one question with the Haystack pipeline of the side-by-side benchmark."""
        prediction = self.system.answer(question)
        return {"answer": prediction.text, "score": prediction.score, "abstained": prediction.abstained}
