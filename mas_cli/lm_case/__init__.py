"""The paper's language-model case in miniature (`mas pipeline experiment=lm_case`): a tiny base
LM, copies fine-tuned on two styles of text, MAS between every pair with data=continuation.
corpus.py (the texts), models.py (the models, store entries), run.py (the fits and the verdict)."""
