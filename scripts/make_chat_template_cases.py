"""Renders conversations with real chat templates through transformers' own Jinja renderer.

Writes peft-core/src/test/resources/chat-templates/cases.json, which ChatTemplateTest holds peft4j's renderings to.
The templates are not committed: pass a directory holding them, copied from each model's published
tokenizer_config.json ("chat_template"), named
  llama3.jinja (Meta-Llama-3-8B-Instruct), llama31.jinja (Llama-3.1-8B-Instruct), llama32.jinja (Llama-3.2-3B-Instruct),
  qwen2.jinja (Qwen2-7B-Instruct), qwen25.jinja (Qwen2.5-7B-Instruct), qwen3.jinja (Qwen3-0.6B),
  mistral-v03.jinja (Mistral-7B-Instruct-v0.3), mistral-nemo.jinja (Mistral-Nemo-Instruct-2407).

  /tmp/fixtures-venv/bin/python scripts/make_chat_template_cases.py TEMPLATE_DIR
"""
import hashlib
import json
import pathlib
import sys

import transformers
from transformers.utils.chat_template_utils import render_jinja_template

TOKENS = {  # bos_token, eos_token as each model's tokenizer_config.json has them
    "llama": ("<|begin_of_text|>", "<|eot_id|>"),
    "qwen": (None, "<|im_end|>"),
    "mistral": ("<s>", "</s>"),
}

CONVERSATIONS = {
    "system-user-assistant": [
        {"role": "system", "content": "You are terse. "},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4."},
    ],
    "two-turns-open": [
        {"role": "user", "content": " Hi there"},
        {"role": "assistant", "content": " Hello! "},
        {"role": "user", "content": "Name a prime.\n"},
    ],
    "multi-turn-with-system": [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "One?"},
        {"role": "assistant", "content": "Yes, one."},
        {"role": "user", "content": "Two?"},
        {"role": "assistant", "content": "Two, sure."},
    ],
    "thinking": [
        {"role": "user", "content": "Why?"},
        {"role": "assistant", "content": "<think>\nearlier reasoning\n</think>\n\nBecause."},
        {"role": "user", "content": "And now?"},
        {"role": "assistant", "content": "<think>\nfresh reasoning\n</think>\n\nStill because."},
    ],
    "not-alternating": [
        {"role": "user", "content": "First."},
        {"role": "user", "content": "Second."},
    ],
}


def main(template_dir):
    cases = []
    for path in sorted(pathlib.Path(template_dir).glob("*.jinja")):
        name = path.stem
        template = path.read_text()
        bos, eos = TOKENS[next(k for k in TOKENS if name.startswith(k))]
        for conversation, messages in CONVERSATIONS.items():
            for generation_prompt in (False, True):
                for extra in ({}, {"enable_thinking": False}) if name == "qwen3" else ({},):
                    kwargs = dict(extra)
                    if name.startswith("llama3"):
                        kwargs["date_string"] = "26 Jul 2024"
                    try:
                        text = render_jinja_template(conversations=[messages], chat_template=template,
                                                     add_generation_prompt=generation_prompt, bos_token=bos,
                                                     eos_token=eos, **kwargs)[0][0]
                        error = None
                    except Exception as e:  # the template's own raise_exception
                        text, error = None, str(e)
                    cases.append({"template": name, "template_sha256": hashlib.sha256(template.encode()).hexdigest(),
                                  "conversation": conversation,
                                  "add_generation_prompt": generation_prompt, "bos_token": bos, "eos_token": eos,
                                  "variables": kwargs, "text": text, "error": error})
    out = pathlib.Path(__file__).resolve().parent.parent / "peft-core/src/test/resources/chat-templates/cases.json"
    lines = [json.dumps(c, ensure_ascii=False) for c in cases]  # one case a line: small, and diffs stay readable
    out.write_text('{"transformers": %s,\n"conversations": %s,\n"cases": [\n%s\n]}\n' % (
        json.dumps(transformers.__version__), json.dumps(CONVERSATIONS, ensure_ascii=False), ",\n".join(lines)))
    print(f"{len(cases)} cases -> {out}")


if __name__ == "__main__":
    main(sys.argv[1])
