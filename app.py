"""Gradio app of autothink-lite: `python app.py` serves the built-in miniature on http://127.0.0.1:7860.

`python app.py --model deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B --adapter runs/my-run/stage3/final` for a
real model; `--help` lists the options. The app itself lives in `autothink_lite/app_ui.py`.
"""

from autothink_lite.app_ui import main

if __name__ == "__main__":
    main()
