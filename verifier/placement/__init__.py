"""Placing verified files where model loaders read them: the Hugging Face cache or a folder."""
