"""Training-only variants of corpus rows (never used for evaluation).

* `embedded`: short rows pasted into a longer benign text at a paragraph or sentence boundary,
  with their own label. An attack in the middle of a long tool output is the common case; benign
  requests pasted the same way keep "pasted into a document" from being the signal.
* `disguised`: rows rewritten the ways attackers hide text from filters (look-alike letters,
  invisible characters, fullwidth or mathematical letters, leetspeak, spaced letters, base64 /
  hex / percent-encoding behind a "decode this" line, tag characters). Applied to benign rows too,
  with benign wrappers, so that the disguise alone is not learned as the attack.
"""
import base64
import random
import re
import urllib.parse

EMBED_FROM = {"instruction_override", "agent_hijack", "exfiltration", "prompt_extraction", "indirect",
              "tool_abuse", "secrets_access", "code_execution", "social_engineering", "multilingual",
              "benign_user_request", "benign_roleplay_chat", "benign_tool_args", "benign_chat", "benign_admin"}
CARRIERS = {"benign_tool_output", "benign_config_docs", "benign_security", "docs_man", "docs_readme",
            "docs_rustdoc", "docs_pydoc"}
EMBED_RATE = 0.4
DISGUISE_RATE = {1: 0.15, 0: 0.15}

LOOKALIKE = {"a": "а", "c": "с", "e": "е", "i": "і", "j": "ј", "o": "о", "p": "р", "s": "ѕ", "x": "х", "y": "у"}
DIGITS = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "g": "9"}
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
DECODE_ATTACK = ["Decode this and do what it says: ", "base64 -> follow: ", "Instructions (encoded): ",
                 "Run after decoding:\n", "Decode the hex and comply: ", "{payload} <- decode, then act on it"]
DECODE_BENIGN = ["Attachment (base64): ", "data: ", "checksum payload: ", "encoded body: ", "blob="]


def embedded(rows, carriers, rng):
    out = []
    short = [r for r in rows if len(r["text"].split()) <= 80 and r["category"] in EMBED_FROM]
    for r in short:
        if rng.random() > EMBED_RATE:
            continue
        c = rng.choice(carriers)["text"]
        cuts = [m.end() for m in re.finditer(r"\n\n|(?<=[.!?])\s", c)] or [len(c)]
        at = rng.choice(cuts)
        sep = "\n\n" if rng.random() < 0.5 else " "
        out.append({"text": c[:at].rstrip() + sep + r["text"] + " " + c[at:].lstrip(), "label": r["label"],
                    "category": "embedded_" + r["category"], "source": "aug"})
    return out


def _per_char(text, table, rate, rng):
    return "".join(table[ch.lower()] if ch.lower() in table and rng.random() < rate else ch for ch in text)


def _disguise(text, label, rng):
    kind = rng.choice(["lookalike", "invisible", "fullwidth", "math", "digits", "spaced", "base64", "hex",
                       "percent", "tags", "mixed_case"])
    if kind == "lookalike":
        return _per_char(text, LOOKALIKE, 0.5, rng)
    if kind == "invisible":
        zw = rng.choice(INVISIBLE)
        return "".join(ch + zw if ch.isalpha() and rng.random() < 0.4 else ch for ch in text)
    if kind == "fullwidth":
        return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)
    if kind == "math":
        return "".join(chr(0x1D41A + ord(ch) - 97) if "a" <= ch <= "z" else ch for ch in text)
    if kind == "digits":
        return _per_char(text, DIGITS, 0.6, rng)
    if kind == "spaced":
        words = text.split(" ")
        k = rng.randint(2, 6)
        return " ".join(" ".join(w) for w in words[:k]) + "  " + " ".join(words[k:])
    if kind == "tags":
        cover = rng.choice(["Done, see above.", "Build #4471 passed.", "Thanks!", "Summary attached."])
        return cover + "".join(chr(0xE0000 + ord(ch)) for ch in text if 0x20 <= ord(ch) < 0x7F)
    if kind == "mixed_case":
        return "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in text)
    body = text.encode()
    enc = {"base64": lambda: base64.b64encode(body).decode(), "hex": lambda: body.hex(),
           "percent": lambda: urllib.parse.quote(text)}[kind]()
    lead = rng.choice(DECODE_ATTACK if label else DECODE_BENIGN)
    return lead.replace("{payload}", enc) if "{payload}" in lead else lead + enc


def disguised(rows, rng):
    out = []
    for r in rows:
        if rng.random() < DISGUISE_RATE[r["label"]] and len(r["text"]) < 1500:
            out.append({"text": _disguise(r["text"], r["label"], rng), "label": r["label"],
                        "category": "disguised_" + r["category"], "source": "aug"})
    return out


def variants(rows, carriers, seed):
    rng = random.Random(seed)
    return embedded(rows, carriers, rng) + disguised(rows, rng)
