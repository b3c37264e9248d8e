"""The ColorBench Gradio app (a Hugging Face Space). Thin: it calls ``colorbench``."""
