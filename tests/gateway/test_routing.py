"""Routing table tests: seed 002's buckets, tie-breaks, image rule and size promotion,
against the policy rendered from inventory/example.yml."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearth.gateway.routing import Router, RoutingError

from .standins import example_config

CFG = example_config()
R = Router(CFG)


def chat(text: str, model: str = "hearth/auto", **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


@pytest.mark.parametrize(("text", "bucket", "route"), [
    ("What is in this screenshot from the ring camera?", "vision", "vision"),
    ("Frigate flagged motion on the driveway", "vision", "vision"),
    ("send an SMS to the family", "notification", "chat"),
    ("queue a push notification for later", "notification", "chat"),
    ("classify these support tickets", "fast", "fast"),
    ("return json with tags for this text", "fast", "fast"),
    ("tell me about the roman empire", "general_chat", "chat"),
    ("how do I bake bread?", "general_chat", "chat"),
    ("rewrite this paragraph", "utility", "utility"),
    ("translate to French please", "utility", "utility"),
    ("tl;dr of this thread", "medium_summary", "chat"),
    ("give me an executive summary", "medium_summary", "chat"),
    ("refactor the FastAPI app and add pytest", "coding", "code"),
    ("implement a parser", "coding", "code"),
    ("run this as a multi-step agent with tool use", "agentic", "agent"),
    ("ask hermes to check opencode", "agentic", "agent"),
    ("weigh the architecture trade-off", "reasoning", "reasoning"),
    ("assess the risk of this migration", "reasoning", "reasoning"),
])
def test_every_bucket(text: str, bucket: str, route: str) -> None:
    d = R.decide(chat(text))
    assert (d.bucket, d.route) == (bucket, route)
    assert d.reason.startswith(f"bucket_match:{bucket}")


def test_nothing_matched_goes_to_default_route() -> None:
    d = R.decide(chat("Lorem ipsum dolor sit amet"))
    assert (d.bucket, d.route, d.reason) == ("unknown", "reasoning", "no_match:default_route")


def test_word_boundaries_and_case() -> None:
    assert R.decide(chat("please encode and decode these codes")).bucket == "unknown"
    assert R.decide(chat("REFACTOR THIS")).bucket == "coding"
    assert R.decide(chat("the planet is big")).bucket == "unknown"  # 'plan' in 'planet'


def test_phrases_match_across_whitespace_only_as_phrases() -> None:
    assert R.decide(chat("a push\n  notification")).bucket == "notification"
    assert R.decide(chat("push the notification")).bucket == "unknown"
    assert R.decide(chat("summarize briefly")).bucket == "fast"  # fast beats medium_summary


@pytest.mark.parametrize(("text", "bucket"), [
    ("camera code", "vision"),        # vision 1 = coding 1 -> vision first in tie_break
    ("python plan", "coding"),        # coding 1 = reasoning 1 -> coding before reasoning
    ("agent architecture", "agentic"),  # agentic 2 = reasoning 2 -> agentic before reasoning
    ("plan: tell me about it", "reasoning"),  # reasoning 1 = general_chat 1
    ("classify and rewrite", "fast"),  # fast 1 = utility 1
    ("sms recap", "notification"),    # notification 1 = medium_summary 1
    ("ask to translate", "general_chat"),  # general_chat 1 = utility 1
])
def test_tie_breaks_follow_policy_order(text: str, bucket: str) -> None:
    d = R.decide(chat(text))
    assert d.bucket == bucket
    assert "tie_break_over:" in d.reason


def test_weights_beat_tie_break_review_security_of_code_goes_to_spark() -> None:
    d = R.decide(chat("Review the security of this code"))
    assert (d.bucket, d.route) == ("reasoning", "reasoning")


def test_only_last_user_message_is_classified_but_all_count_for_size() -> None:
    body = {"model": "hearth/auto", "messages": [
        {"role": "system", "content": "You are a code refactor assistant " + "x" * 100_000},
        {"role": "user", "content": "tell me about owls"}]}
    d = R.decide(body)
    assert d.bucket == "general_chat"
    assert d.est_tokens > 24000
    assert d.route == "reasoning"  # the system prompt's size promotes general_chat


IMG = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


def test_image_always_wins_over_keywords() -> None:
    body = {"model": "hearth/auto", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "refactor this python code"}, IMG]}]}
    d = R.decide(body)
    assert (d.route, d.reason, d.has_image) == ("vision", "image_present", True)


def test_image_overrides_a_pin_to_a_blind_route_but_not_to_a_seeing_one() -> None:
    blind = {"model": "hearth/chat", "messages": [{"role": "user", "content": [IMG]}]}
    d = R.decide(blind)
    assert d.route == "vision" and d.reason == "image_overrides_pin:chat"
    seeing = {"model": "hearth/reasoning", "messages": [{"role": "user", "content": [IMG]}]}
    assert R.decide(seeing).route == "reasoning"
    concrete_blind = {"model": "gemma-4-31b", "messages": [{"role": "user", "content": [IMG]}]}
    d = R.decide(concrete_blind)
    assert d.route == "vision" and d.upstreams is None


def tokens(n: int) -> str:
    return "z " * (n * 2)  # 4 chars per token estimate: "z " is 2 chars


@pytest.mark.parametrize(("kw", "size", "route"), [
    ("classify", 100, "fast"), ("classify", 8000, "fast"), ("classify", 8001, "code"),
    ("classify", 24000, "code"), ("classify", 24001, "reasoning"),
    ("tell me about", 100, "chat"), ("tell me about", 20000, "chat"),
    ("tell me about", 30000, "reasoning"),
    ("rewrite", 100, "utility"), ("rewrite", 12000, "utility"), ("rewrite", 25000, "reasoning"),
    ("summarize", 9000, "chat"), ("summarize", 25000, "reasoning"),
    ("sms", 25000, "reasoning"),
    ("refactor", 30000, "code"),       # coding stays pinned to its machine
    ("agent", 30000, "agent"),
    ("architecture", 30000, "reasoning"),
    ("screenshot", 30000, "vision"),   # vision stays pinned
])
def test_size_promotion(kw: str, size: int, route: str) -> None:
    d = R.decide(chat(f"{kw} {tokens(size)}"[: size * 4]))
    assert d.route == route, d.reason
    assert ("size_promotion" in d.reason) == (route != CFG.routing.buckets[d.bucket].route)


def test_overrides_header_model_metadata_and_precedence() -> None:
    assert R.decide(chat("refactor", model="hearth/chat")).reason == "model_pin"
    assert R.decide(chat("refactor", model="hearth/chat")).route == "chat"
    d = R.decide(chat("refactor", model="gemma-4-31b"))
    assert (d.route, d.upstreams) == ("chat", ("mouth",))
    d = R.decide(chat("refactor", metadata={"hearth_route": "fast"}))
    assert (d.route, d.reason) == ("fast", "metadata_pin")
    d = R.decide(chat("refactor", model="hearth/chat", metadata={"hearth_route": "fast"}),
                 header_route="agent")
    assert (d.route, d.reason, d.pinned) == ("agent", "header_pin", True)
    d = R.decide(chat("refactor", model="hearth/chat", metadata={"hearth_route": "fast"}))
    assert d.route == "chat"


def test_unknown_model_and_route_are_rejected() -> None:
    with pytest.raises(RoutingError) as e:
        R.decide(chat("x", model="gpt-4o"))
    assert (e.value.status, e.value.code) == (404, "model_not_found")
    with pytest.raises(RoutingError) as e:
        R.decide(chat("x"), header_route="nope")
    assert e.value.status == 400
    with pytest.raises(RoutingError):
        R.decide(chat("x", metadata={"hearth_route": "nope"}))


def test_completions_prompt_is_classified() -> None:
    assert R.decide({"model": "hearth/auto", "prompt": "implement quicksort"}).route == "code"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.lists(st.sampled_from(
    ["refactor", "image", "tl;dr", "sms", "agent", "plan", "ask", "json"]), max_size=5))
def test_classifier_is_total_and_deterministic(text: str, kws: list[str]) -> None:
    body = chat(text + " " + " ".join(kws))
    a, b = R.decide(body), R.decide(body)
    assert a.route in CFG.routes and (a.route, a.reason) == (b.route, b.reason)
