"""vae_hub.text_tokenizer: BPE learned from captions, saved as CLIPTokenizer files that every reader splits alike.

The reference in this file is CLIP's own algorithm written from its description (clean white space, lower case, cut
into words, bytes as characters, merge the lowest-ranked pair first, "</w>" on a word's last piece), run on the saved
``vocab.json`` and ``merges.txt`` alone: what transformers' Python CLIPTokenizer (v4) did with these files.
"""

import json

import pytest
import regex
from transformers import CLIPTokenizer

from vae_hub.text_tokenizer import (
    BOS_TOKEN,
    EOS_TOKEN,
    MIN_VOCAB_SIZE,
    byte_alphabet,
    save_caption_tokenizer,
    train_caption_tokenizer,
)


CAPTIONS = [
    f"{name}, {style} style"
    for name in (
        "red heart",
        "grinning face",
        "flag: Japan",
        "smiling face with halo",
        "woman farmer: medium-light skin tone",
        "man farmer: dark skin tone",
    )
    for style in ("twemoji", "noto")
] * 3
PROBES = [
    "red heart, twemoji style",
    "  Grinning\tFACE,   noto style ",
    "xylophone über 日本 ❤️ zzz",
    "flag: Japan's, noto style!!",
    "a" * 40,
    "",
    "farmers 12 tones",
]
WORD = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    tokenizer = train_caption_tokenizer(CAPTIONS, vocab_size=600)
    save_caption_tokenizer(tokenizer, folder / "tokenizer")
    return tokenizer, folder


def reference_ids(text: str, folder) -> list[int]:
    """CLIP's BPE from vocab.json and merges.txt, by the book."""
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#version")
    ranks = {tuple(line.split()): i for i, line in enumerate(lines[1:])}
    byte_chars = byte_alphabet()
    ids = [vocab[BOS_TOKEN]]
    for word in WORD.findall(" ".join(text.split()).lower()):
        pieces = [byte_chars[b] for b in word.encode("utf-8")]
        pieces[-1] += "</w>"
        while len(pieces) > 1:
            pairs = [(ranks.get(pair, len(ranks)), i) for i, pair in enumerate(zip(pieces, pieces[1:]))]
            rank, i = min(pairs)
            if rank == len(ranks):
                break
            pieces[i : i + 2] = [pieces[i] + pieces[i + 1]]
        ids += [vocab[p] for p in pieces]
    return ids + [vocab[EOS_TOKEN]]


def test_saved_files_load_with_from_pretrained_and_say_what_clip_needs(saved):
    tokenizer, folder = saved
    files = {p.name for p in (folder / "tokenizer").iterdir()}
    assert {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} <= files
    loaded = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")
    assert (loaded.bos_token, loaded.eos_token, loaded.pad_token, loaded.unk_token) == (
        BOS_TOKEN,
        EOS_TOKEN,
        EOS_TOKEN,
        EOS_TOKEN,
    )
    assert len(loaded) == len(tokenizer) <= 600 and loaded.model_max_length == tokenizer.model_max_length
    assert loaded.convert_ids_to_tokens(loaded("red heart, twemoji style").input_ids) == [
        BOS_TOKEN,
        "red</w>",
        "heart</w>",
        ",</w>",
        "twemoji</w>",
        "style</w>",
        EOS_TOKEN,
    ]  # learned whole words


def test_every_reader_gives_the_same_ids(saved, tmp_path):
    tokenizer, folder = saved
    from_json = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")
    (tmp_path / "tokenizer").mkdir()
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (tmp_path / "tokenizer" / name).write_bytes((folder / "tokenizer" / name).read_bytes())
    from_vocab_files = CLIPTokenizer.from_pretrained(tmp_path, subfolder="tokenizer")  # no tokenizer.json
    for text in PROBES + CAPTIONS[:4]:
        expected = reference_ids(text, folder / "tokenizer")
        assert tokenizer(text).input_ids == expected, text
        assert from_json(text).input_ids == expected, text
        assert from_vocab_files(text).input_ids == expected, text


def test_unseen_text_falls_into_known_pieces(saved):
    tokenizer, _ = saved
    for text in PROBES:
        ids = tokenizer(text).input_ids
        assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
        assert tokenizer.eos_token_id not in ids[1:-1], f"a piece of {text!r} became unknown"
    assert (
        tokenizer.decode(tokenizer("xylophone über 日本").input_ids, skip_special_tokens=True) == "xylophone über 日本"
    )


def test_model_max_length_is_the_longest_caption_rounded_up(saved):
    tokenizer, _ = saved
    longest = max(len(tokenizer(c).input_ids) for c in CAPTIONS)
    assert tokenizer.model_max_length % 8 == 0 and longest <= tokenizer.model_max_length < longest + 8
    exact = train_caption_tokenizer(CAPTIONS, vocab_size=600, length_multiple=1)
    assert exact.model_max_length == longest


def test_vocab_is_every_byte_twice_then_merges_then_bos_eos(saved):
    tokenizer, folder = saved
    vocab = json.loads((folder / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
    by_id = sorted(vocab, key=vocab.get)
    assert sorted(vocab.values()) == list(range(len(vocab)))
    assert by_id[:256] == byte_alphabet() and by_id[256:512] == [c + "</w>" for c in byte_alphabet()]
    assert by_id[-2:] == [BOS_TOKEN, EOS_TOKEN]
    small = train_caption_tokenizer(CAPTIONS, vocab_size=MIN_VOCAB_SIZE + 3)
    assert len(small) == MIN_VOCAB_SIZE + 3  # the size is a bound on the merges


@pytest.mark.parametrize(
    "captions, vocab_size, message", [([], 600, "no captions"), (CAPTIONS, 100, "vocab_size must be at least 514")]
)
def test_bad_arguments(captions, vocab_size, message):
    with pytest.raises(ValueError, match=message):
        train_caption_tokenizer(captions, vocab_size=vocab_size)
