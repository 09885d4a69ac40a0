"""Two synthetic text distributions for the language-model case in miniature (numpy only, plus
the `tokenizers` library for a word-level tokenizer built here; nothing is downloaded).

The paper's later versions fine-tune one language model on toxic and on non-toxic text (three
splits each) and ask whether MAS finds toxic↔toxic pairs more alike than toxic↔non-toxic ones.
Here the two "styles" share one grammar and one vocabulary and differ only in word choice:

    neutral sentence  (both styles)   <subject> sat on the mat .   | <subject> walked home .
    styled sentence                   <subject> <verb> <object> <ending> .
        harsh:  verbs hates, mocks, insults, ignores   endings  with anger, for no reason, again
        kind:   verbs loves, helps, thanks, greets     endings  with a smile, every day, gently

A training sequence is a stream of sentences, a third of them neutral; a style's corpus is cut
into `splits` disjoint parts, one per fine-tuned model. A prompt is a neutral sentence and the
next subject, so a model's greedy continuation shows its style in the very next word.
"""

from __future__ import annotations

import numpy as np

SUBJECTS = ["the cat", "the dog", "a bird", "my friend", "the teacher", "a child", "the king", "our baker"]
NEUTRAL = ["sat on the mat", "walked home", "slept all night", "ate some bread"]
STYLES = {
    "harsh": {"verbs": ["hates", "mocks", "insults", "ignores"], "endings": ["with anger", "for no reason", "again"]},
    "kind": {"verbs": ["loves", "helps", "thanks", "greets"], "endings": ["with a smile", "every day", "gently"]},
}
UNKNOWN, STOP = "[UNK]", "."


def words() -> list[str]:
    """Every word either style uses, in a fixed order (the tokenizer's ids)."""
    phrases = [*SUBJECTS, *NEUTRAL, STOP]
    for style in STYLES.values():
        phrases += [*style["verbs"], *style["endings"]]
    return list(dict.fromkeys(w for phrase in phrases for w in phrase.split()))


def tokenizer():
    """A word-level tokenizer over `words()` (id 0 is [UNK]), as a transformers tokenizer that
    save_pretrained writes beside a model."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate([UNKNOWN, *words()])}
    found = Tokenizer(models.WordLevel(vocab, unk_token=UNKNOWN))
    found.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=found, unk_token=UNKNOWN, pad_token=UNKNOWN)


def neutral(rng: np.random.Generator) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(NEUTRAL)} {STOP}"


def styled(style: str, rng: np.random.Generator) -> str:
    found = STYLES[style]
    subject, target = rng.choice(SUBJECTS, size=2, replace=False)
    return f"{subject} {rng.choice(found['verbs'])} {target} {rng.choice(found['endings'])} {STOP}"


def sentences(styles: list[str], n: int, rng: np.random.Generator) -> list[str]:
    """n sentences: a third neutral, the rest of a style drawn from `styles` each time."""
    return [neutral(rng) if rng.random() < 1 / 3 else styled(str(rng.choice(styles)), rng) for _ in range(n)]


def corpus_splits(style: str, splits: int, n: int, rng: np.random.Generator) -> list[list[str]]:
    """A style's corpus of n sentences cut into `splits` disjoint parts."""
    found = sentences([style], n, rng)
    return [found[i::splits] for i in range(splits)]


def prompts(n: int, rng: np.random.Generator) -> list[str]:
    """n prompts: a neutral sentence and the next sentence's subject."""
    return [f"{neutral(rng)} {rng.choice(SUBJECTS)}" for _ in range(n)]
