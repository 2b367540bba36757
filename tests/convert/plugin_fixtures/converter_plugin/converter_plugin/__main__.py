"""A test converter plugin: 'txt' pseudo-models to 'txt', upper-cased, with the parameters it received.

Behaviour the tests drive through the input text: "fail" -> a reported failure, "crash" -> the process
dies, "raise" -> an exception, "sleep" -> a long conversion (timeouts).
"""

import json
import os
import sys
import time

TXT = {"ext": "txt", "name": "Text pseudo-model"}


def query_convert(src_type, dst_type):
    if src_type is None and dst_type is None:
        return {"supported_inputs": [TXT], "supported_outputs": [TXT]}
    if (src_type, dst_type) == ("txt", "txt"):
        return {"name": {"type": "string", "default": "", "group": "general", "public": True, "help": "model name"}}
    return None


def convert(src_file, dst_file, params):
    with open(src_file) as f:
        text = f.read()
    print("converter_plugin: converting", src_file)  # plugins print; the protocol must not care
    if "fail" in text:
        return {"success": "no", "message": f"converter_plugin: {src_file} asks to fail"}
    if "crash" in text:
        sys.stdout.flush()
        os._exit(3)
    if "raise" in text:
        raise ValueError("converter_plugin was told to raise")
    if "sleep" in text:
        time.sleep(60)
    seen = {k: params[k] for k in ("name", "input-model-type", "output_model_type") if k in params}
    with open(dst_file, "w") as f:
        f.write(text.upper())
        f.write("\n" + json.dumps({"params": seen, "python": sys.executable}))
    return {"success": "yes", "message": "upper-cased"}
