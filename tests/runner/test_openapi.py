"""The OpenAPI description (eiq_lab/runner/openapi.yaml) against the running server: every documented path and
method answers with a documented status and content type, and JSON bodies match the documented schemas;
then a bounded schema-driven fuzz of POST /v1 (random documented and undocumented values) gets no 5xx."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import requests
import yaml

import eiq_lab.runner

SPEC = yaml.safe_load((Path(eiq_lab.runner.__file__).parent / "openapi.yaml").read_text())
TENSOR = "application/vnd.deepview.tensor.float32"
TYPES = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float), "boolean": bool}


def resolve(node: dict) -> dict:
    """A schema node with its $ref followed (the test's own small resolver)."""
    while "$ref" in node:
        target = SPEC
        for key in node["$ref"].removeprefix("#/").split("/"):
            target = target[key]
        node = target
    return node


def problems(schema: dict, value, where: str = "body") -> list[str]:
    """What in `value` does not match `schema` (the subset of JSON Schema the description uses)."""
    schema = resolve(schema)
    if value is None and schema.get("nullable"):
        return []
    if "oneOf" in schema:
        found = [problems(option, value, where) for option in schema["oneOf"]]
        return [] if any(not p for p in found) else [f"{where}: matches no oneOf alternative: {found}"]
    kind = schema.get("type")
    if kind and (not isinstance(value, TYPES[kind]) or (kind in ("integer", "number") and isinstance(value, bool))):
        return [f"{where}: expected {kind}, received {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    out = []
    if kind == "object":
        out += [f"{where}: missing {key}" for key in schema.get("required", []) if key not in value]
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                out += problems(sub, value[key], f"{where}.{key}")
    if kind == "array":
        for n, item in enumerate(value):
            out += problems(schema.get("items", {}), item, f"{where}[{n}]")
    return out


def check(method: str, path: str, reply: requests.Response) -> None:
    """The reply is one the description documents for this operation."""
    operation = SPEC["paths"][path][method.lower()]
    status = str(reply.status_code)
    assert status in operation["responses"], f"{method} {path}: undocumented status {status}: {reply.text[:300]}"
    response = resolve(operation["responses"][status])
    media = reply.headers.get("Content-Type", "").split(";")[0].strip()
    assert media in response.get("content", {}), f"{method} {path} {status}: undocumented content type {media}"
    if media == "application/json":
        found = problems(response["content"][media]["schema"], reply.json())
        assert not found, f"{method} {path} {status}: {found}"


@pytest.fixture
def servers(runner, models):
    from eiq_lab.runner.server import Limits

    limits = Limits(block_size=4096, max_model_size=1 << 20, max_input_size=64 * 1024)
    return {"loaded": runner(models["float"], limits=limits), "empty": runner(limits=limits),
            "token": runner(models["float"], token="t0ken")}  # fmt: skip


def test_description_is_openapi_3_with_the_protocols_operations():
    assert SPEC["openapi"].startswith("3.")
    operations = {(path, method) for path, item in SPEC["paths"].items() for method in item}
    assert operations == {("/", "get"), ("/v1", "get"), ("/v1", "put"), ("/v1", "post"), ("/v1/model", "get")}
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                assert resolve(response).get("content"), f"{method} {path} {status} documents no content type"


def test_every_documented_operation_answers_as_documented(servers, models, images):
    base = servers["loaded"].url.removesuffix("/v1")
    url, empty, locked = servers["loaded"].url, servers["empty"].url, servers["token"].url
    name = requests.get(url + "/model", timeout=10).json()["inputs"][0]["name"]
    value = np.zeros((1, 32, 32, 3), np.float32)
    image = {"data": images[0].read_bytes(), "headers": {"Content-Type": "image/jpeg"}}
    seen: set[tuple[str, str, int]] = set()

    def call(method: str, path: str, address: str, **kwargs) -> requests.Response:
        reply = requests.request(method, address, timeout=30, **kwargs)
        check(method, path, reply)
        seen.add((method, path, reply.status_code))
        return reply

    call("GET", "/", base + "/")
    call("GET", "/v1", url)
    call("GET", "/v1", locked)  # 401
    call("GET", "/v1/model", url + "/model")
    call("GET", "/v1/model", url + "/model", headers={"Accept": "application/octet-stream"})
    call("GET", "/v1/model", empty + "/model")  # 404
    data = models["float"].read_bytes()
    blocks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    call("PUT", "/v1", empty, files={"block_count": ("n", str(len(blocks)).encode())})
    for block in blocks:
        call("PUT", "/v1", empty, files={"block_content": ("b", block)})
    call("PUT", "/v1", empty, data=b"not multipart")  # 400
    call("PUT", "/v1", empty, files={"block_count": ("n", b"100000")})  # 413
    call("POST", "/v1", url, **image)
    call("POST", "/v1", url, params={"output": "output", "id": "x"}, **image)
    call("POST", "/v1", url, headers={"Accept": "text/plain"})
    call("POST", "/v1", url, params={"output": "output"}, headers={"Accept": "application/vnd.deepview.tensor"})
    call("POST", "/v1", url, files={name: ("1,32,32,3", value.tobytes(), TENSOR)})
    call("POST", "/v1", url, data=b"a\nb\nc\nd", headers={"Content-Type": "labels/txt"})
    call("POST", "/v1", url, params={"output": ["a", "b", "c", "d", "e"]})  # 400
    call("POST", "/v1", url, params={"output": "nope"})  # 404
    call("POST", "/v1", url, data=b"\0" * 70000, headers={"Content-Type": "image/png"})  # 413
    call("POST", "/v1", url, data=b"garbage", headers={"Content-Type": "image/png"})  # 415
    statuses = {(method, path): {s for m, p, s in seen if (m, p) == (method, path)} for method, path, _ in seen}
    assert statuses[("POST", "/v1")] >= {200, 400, 404, 413, 415}
    assert statuses[("PUT", "/v1")] >= {200, 400, 413} and statuses[("GET", "/v1/model")] >= {200, 404}


def test_schema_driven_fuzz_of_runs_gets_no_server_error(servers, images):
    url = servers["loaded"].url
    model = requests.get(url + "/model", timeout=10).json()
    name, output = model["inputs"][0]["name"], model["outputs"][0]["name"]
    parameters = {p["name"]: p["schema"] for p in SPEC["paths"]["/v1"]["post"]["parameters"]}
    rng = np.random.default_rng(7)
    junk = ["", "-1", "0", "1e9", "%00", "a" * 300, "../../etc/passwd", "null"]

    def pick(options):
        return options[int(rng.integers(len(options)))]

    bodies = [
        lambda: {"data": images[int(rng.integers(len(images)))].read_bytes(), "headers": {"Content-Type": "image/*"}},
        lambda: {
            "data": rng.bytes(int(rng.integers(0, 3000))),
            "headers": {"Content-Type": pick(["image/png", "image/jpg"])},
        },
        lambda: {"files": {name: (pick(["1,32,32,3", "1,32,32", "x", ""]), rng.bytes(pick([12288, 100, 0])), TENSOR)}},
        lambda: {"files": {pick([name, "other"]): ("1,32,32,3", np.zeros((1, 32, 32, 3), np.float32).tobytes())}},
        lambda: {},
        lambda: {"data": rng.bytes(50), "headers": {"Content-Type": pick(["text/csv", "multipart/form-data"])}},
    ]
    for _ in range(80):
        params = {}
        if rng.random() < 0.7:
            params["run"] = str(rng.integers(1, 4)) if rng.random() < 0.7 else pick(junk)
        if rng.random() < 0.6:
            params["output"] = [pick([output, "output", pick(junk)]) for _ in range(int(rng.integers(0, 6)))]
        if rng.random() < 0.5:
            params["imgproc"] = pick(parameters["imgproc"]["enum"]) if rng.random() < 0.7 else pick(junk)
        if rng.random() < 0.3:
            params["id"] = pick(junk)
        kwargs = pick(bodies)()
        headers = {**kwargs.pop("headers", {}), "Accept": pick(["application/json", "text/plain", "*/*",
                                                                  "application/vnd.deepview.tensor"])}  # fmt: skip
        reply = requests.post(url, params=params, headers=headers, timeout=30, **kwargs)
        assert reply.status_code < 500, f"{params} {headers}: {reply.status_code} {reply.text[:300]}"
        check("POST", "/v1", reply)
    after = requests.post(url, data=images[0].read_bytes(), headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert after.status_code == 200 and "label" in after.json()
