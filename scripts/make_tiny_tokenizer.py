"""A tiny BPE tokenizer (128 ids) for the tiny decoder fixtures, whose vocab_size is 128.

Writes peft-core/src/test/resources/fixtures/tiny-chat-tokenizer/{tokenizer.json,tokenizer_config.json}:
ids 0-4 are <unk>, <s> (bos, as tiny-llama's bos_token_id 1), </s> (eos, tiny-llama's eos_token_id 2),
<|im_start|>, <|im_end|>; a Metaspace pre-tokenizer as SentencePiece-style Llama tokenizers have; <s> added in front
of a single text (Llama's post-processor); a ChatML chat template. Trained on the small corpus below, deterministic.

  /tmp/fixtures-venv/bin/python scripts/make_tiny_tokenizer.py
"""
import json
import pathlib
import string

import tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

SPECIAL = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "What is two plus three? Five.", "What is one plus one? Two.", "Name a colour. Red.",
    "the quick brown fox jumps over the lazy dog", "Repeat after me: hello world.",
    "user assistant system", "Answer with one word.", "Yes, no, maybe.",
] * 20
TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
            "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def main():
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    alphabet = list(string.ascii_letters + string.digits + ".,:?!'\n") + ["▁"]
    trainer = trainers.BpeTrainer(vocab_size=128, special_tokens=SPECIAL, initial_alphabet=alphabet,
                                  limit_alphabet=len(alphabet), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 1)])
    assert tok.get_vocab_size() == 128, tok.get_vocab_size()
    assert [tok.token_to_id(t) for t in SPECIAL] == [0, 1, 2, 3, 4]
    out = pathlib.Path(__file__).resolve().parent.parent / "peft-core/src/test/resources/fixtures/tiny-chat-tokenizer"
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    config = {"bos_token": "<s>", "eos_token": "<|im_end|>", "pad_token": None, "unk_token": "<unk>",
              "chat_template": TEMPLATE, "model_max_length": 64, "tokenizer_class": "PreTrainedTokenizerFast"}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    text = "<|im_start|>user\nWhat is two plus three?<|im_end|>\n<|im_start|>assistant\nFive.<|im_end|>\n"
    enc = tok.encode(text, add_special_tokens=False)
    print(f"tokenizers {tokenizers.__version__}: {tok.get_vocab_size()} ids; {text!r} -> {enc.ids}")
    print("decoded:", repr(tok.decode(enc.ids, skip_special_tokens=False)))


if __name__ == "__main__":
    main()
