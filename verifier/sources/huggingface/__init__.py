"""The Hugging Face source: the Hub (`client`, `source`) and its cache layout (`cache`).

The only package that imports `huggingface_hub`, and only inside functions: naming a Hub
target (`targets`) costs nothing.
"""
