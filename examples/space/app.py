"""A Hugging Face Space that shows a spectrogram-transformers model: the page of `spectrogram-transformers demo`.

A Gradio Space runs `app.py`; this one builds the package's page for the model named by the `MODEL` variable
(a Hub id, or a folder committed next to this file), so the Space and the command line show the same thing.
Put this file and `requirements.txt` in a new Gradio Space, set `MODEL` under Settings -> Variables, done.
Locally: `MODEL=runs/esc50 python app.py`.
"""

import os

from spectrogram_transformers.demo import build_demo

MODEL = os.environ.get("MODEL", "your-name/your-model")

demo = build_demo(MODEL, top_k=int(os.environ.get("TOP_K", "5")), threshold=float(os.environ.get("THRESHOLD", "0.5")))

if __name__ == "__main__":
    demo.launch()
