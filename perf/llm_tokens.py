"""Tokens an LLM run costs, counted with o200k_base: per request, per call type, per run.

Each scenario is a whole ``lapt run`` with the LLM reasoner against the fake OpenAI server of
``tests/fake_openai.py`` on 127.0.0.1, answering as a model would: with the offline miner's answer to
the very request the agent made (the script computes it in-process and hands it to the server), so the
run takes the offline miner's realistic trajectory and answer lengths. Repair rounds, if any, get the
server's own valid answer.

Counted per request: every message's content plus 4 tokens per message and 3 for the reply (OpenAI's
chat overhead), plus the JSON schema where the request carries one (``response_format`` or the tool's
parameters; with JSON mode or plain text lapt writes it into the prompt, so it is in the messages).
Answers are counted as sent back (the message content). The answer cap is the ``max_tokens``
the request carried.

Targets (exit status 1 if one is missed): every request <= 3,000 tokens; every answer within its cap and
request + cap <= 4,096 (a 4,096-token context such as Ollama's default holds request and answer); NB201
cifar10 -> cifar100 budget 20 <= 12,000 input tokens in all; TNB101 jigsaw -> class_scene budget 50
<= 15,000.

Needs the o200k_base encoding offline: ``pip install 'lapt[perf]'`` (the ``bpe-openai`` package, which
embeds it). Run: ``python perf/llm_tokens.py`` (``--json`` adds one machine-readable line).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fake server is a test fixture; the bench reuses it as is

from fake_openai import FakeOpenAI, Recorded  # noqa: E402

SCENARIOS = (
    # (space, source, target, budget, input-token target for the whole run)
    ("nb201", "cifar10", "cifar100", 20, 12_000),
    ("tnb101", "jigsaw", "class_scene", 50, 15_000),
)
REQUEST_LIMIT = 3_000
CONTEXT = 4_096


def encoder() -> Any:
    try:
        import bpe_openai
    except ImportError:
        sys.exit("perf/llm_tokens.py needs o200k_base offline: pip install 'lapt[perf]' (the bpe-openai package)")
    return bpe_openai.get_encoding("o200k_base")


def call_type(req: Recorded) -> str:
    """learn / refine / adapt_improved / adapt_stalled, with ``+repair`` for repair rounds."""
    text = req.text
    if "refined search space" in text:
        kind = "refine"
    elif "found better architectures" in text:
        kind = "adapt_improved"
    elif "stopped improving" in text:
        kind = "adapt_stalled"
    else:
        kind = "learn"
    return kind + ("+repair" if len(req.messages) > 2 else "")


def request_tokens(enc: Any, body: dict[str, Any]) -> tuple[int, int]:
    """(message tokens with chat overhead, schema tokens) of one request body."""
    messages = sum(len(enc.encode(str(m.get("content") or ""))) + 4 for m in body.get("messages") or []) + 3
    fmt = body.get("response_format") or {}
    schema: Any = (fmt.get("json_schema") or {}).get("schema")
    if schema is None and body.get("tools"):
        schema = body["tools"][0]["function"]["parameters"]
    return messages, len(enc.encode(json.dumps(schema, separators=(",", ":")))) if schema else 0


class Mirror:
    """Hands the fake server the offline miner's answer to the request an agent is making right now."""

    def __init__(self) -> None:
        from lapt.agents.offline import OfflineReasoner

        self.offline = OfflineReasoner()
        self.request: Any = None

    def wrap(self, reasoner: Any) -> Any:
        complete = reasoner.complete

        def mirrored(request: Any) -> Any:
            self.request = request
            return complete(request)

        reasoner.complete = mirrored
        return reasoner

    def answer(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The offline answer (before any agent check) to a first-round request; None for repairs."""
        if self.request is None or len(body.get("messages") or []) > 2:
            return None
        reply = self.offline.complete(dataclasses.replace(self.request, check=None))
        return reply.value.model_dump(mode="json") if reply.value is not None else None


def one_run(enc: Any, space: str, source: str, target: str, budget: int) -> dict[str, Any]:
    import lapt
    from lapt.agents.llm import LLMSettings
    from lapt.graph.assembly import make_reasoner

    mirror = Mirror()
    with FakeOpenAI(answer=mirror.answer) as fake:
        llm = LLMSettings(model="fake", base_url=fake.url, timeout_s=10, backoff_max_s=0.01)
        # The real LLM reasoner, watched: the fake server answers each request as the offline miner would.
        result = lapt.run(space, [source], target, budget, seed=0, llm=llm, reasoner=mirror.wrap(make_reasoner(llm)))
        requests = [r for r in fake.chat_requests() if r.status == 200]
    rows = []
    for req in requests:
        messages, schema = request_tokens(enc, req.body)
        choice = req.answer_text or ""
        rows.append(
            {
                "type": call_type(req),
                "messages": messages,
                "schema": schema,
                "request": messages + schema,
                "answer": len(enc.encode(choice)),
                "cap": req.body.get("max_tokens", req.body.get("max_completion_tokens")),
            }
        )
    ok = [d for d in result.decisions if "llm_calls" in d]
    return {
        "scenario": f"{space} {source}->{target} budget {budget}",
        "rows": rows,
        "input_tokens": sum(r["request"] for r in rows),
        "decisions_ok": sum(bool(d.get("ok")) for d in ok),
        "decisions": len(ok),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    args = p.parse_args(argv)
    enc = encoder()
    failures: list[str] = []
    results = []
    for space, source, target, budget, run_limit in SCENARIOS:
        res = one_run(enc, space, source, target, budget)
        results.append(res)
        by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in res["rows"]:
            by_type[r["type"]].append(r)
        print(f"\n{res['scenario']}: {len(res['rows'])} requests, agents ok {res['decisions_ok']}/{res['decisions']}")
        print(
            f"  {'call type':<22}{'calls':>6}{'messages':>10}{'schema':>8}{'request':>9}{'max req':>9}"
            f"{'answer':>8}{'max ans':>9}{'min cap':>9}"
        )
        for kind in ("learn", "refine", "adapt_improved", "adapt_stalled"):
            for name in (kind, f"{kind}+repair"):
                rs = by_type.get(name)
                if not rs:
                    continue
                n = len(rs)
                caps = [r["cap"] for r in rs if r["cap"] is not None]
                print(
                    f"  {name:<22}{n:>6}{sum(r['messages'] for r in rs) // n:>10}{sum(r['schema'] for r in rs) // n:>8}"
                    f"{sum(r['request'] for r in rs) // n:>9}{max(r['request'] for r in rs):>9}"
                    f"{sum(r['answer'] for r in rs) // n:>8}{max(r['answer'] for r in rs):>9}"
                    f"{min(caps) if caps else '-':>9}"
                )
        print(f"  input tokens, whole run: {res['input_tokens']:,} (target <= {run_limit:,})")
        if res["input_tokens"] > run_limit:
            failures.append(f"{res['scenario']}: {res['input_tokens']} input tokens > {run_limit}")
        for r in res["rows"]:
            if r["request"] > REQUEST_LIMIT:
                failures.append(f"{res['scenario']}: a {r['type']} request of {r['request']} tokens > {REQUEST_LIMIT}")
            if r["cap"] is None or r["request"] + r["cap"] > CONTEXT:
                failures.append(f"{res['scenario']}: a {r['type']} request + cap {r['cap']} exceeds {CONTEXT}")
            elif r["answer"] > r["cap"]:
                failures.append(f"{res['scenario']}: a {r['type']} answer of {r['answer']} tokens > its cap {r['cap']}")
    print("\nall targets met" if not failures else "\nmissed:\n  " + "\n  ".join(failures))
    if args.json:
        print(json.dumps({"results": results, "failures": failures}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
