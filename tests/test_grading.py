import json
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autothink_lite
from autothink_lite.grading import answer_matches, gold_answers, is_correct, is_degenerate

BENCHMARKS = Path(autothink_lite.__file__).parent / "data" / "benchmarks"

EQUIVALENT = [
    ("5.5", "\\frac{11}{2}"),
    ("\\dfrac{11}{2}", "\\frac{11}{2}"),
    ("\\frac12", "0.5"),
    ("(3, \\pi/2)", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("76", "76^\\circ"),
    ("76^{\\circ}", "76"),
    ("50\\%", "50"),
    ("\\sqrt{40}", "$2 \\sqrt{10}$"),
    ("[1,3)", "[1, 3)"),
    ("x=5", "5"),
    ("\\text{(B)}", "B"),
    ("(C)", "C"),
    ("142", 142.0),
    ("025", "25"),
    ("3.3\\times10^{12}", "3.3e12\n"),
    ("9i+6", "6+9i"),
    ("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}"),
    ("n^2+1", "$n^{2}+1$"),
    ("Evelyn", "\\text{Evelyn}"),
    ("1,234", "1234"),
]
DIFFERENT = [("3", "4"), ("(1,3]", "[1,3)"), ("B", "C"), ("\\frac{1}{3}", "0.33"), ("-5", "5"), ("x", "y")]


@pytest.mark.parametrize("predicted, gold", EQUIVALENT)
def test_equivalent_answer_forms_are_graded_correct(predicted, gold):
    assert answer_matches(predicted, gold)


@pytest.mark.parametrize("predicted, gold", DIFFERENT)
def test_different_answers_are_graded_wrong(predicted, gold):
    assert not answer_matches(predicted, gold)


def test_any_of_several_gold_answers_counts():
    assert answer_matches("3.89e-10", ["3.89e-10\n", "3.89 \\times 10^{-10}"])
    assert answer_matches("\\frac{e^{t}}{3} + c e^{-2t}", ["x = \\frac{e^{t}}{3} + ce^{-2t}\n", "\\frac{e^{t}}{3} + c e^{-2t}\n"])


def test_answer_must_be_boxed_after_the_think_block():
    assert is_correct("2+3=5</think>\n\nSo \\boxed{5}.", "5")
    assert not is_correct("2+3=5 \\boxed{5}", "5"), "no </think>: format error"
    assert not is_correct("2+3=5</think>\n\nThe answer is 5.", "5"), "no box: format error"
    assert not is_correct("</think>\n\n\\boxed{6}", "5")


@pytest.mark.parametrize("garbage", ["", "</think>", "</think>\\boxed{", "</think>\\boxed{" + "(" * 300 + "}",
                                     "</think>\\boxed{" + "9" * 5000 + "}", "</think>\\boxed{\\frac{1}{0}}"])
def test_garbage_is_wrong_quickly_and_never_raises(garbage):
    start = time.perf_counter()
    assert not is_correct(garbage, "5")
    assert time.perf_counter() - start < 10


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80), st.one_of(st.text(max_size=10), st.integers(), st.floats(allow_nan=False)))
def test_is_correct_never_raises_on_arbitrary_text(text, gold):
    assert is_correct("</think>\\boxed{" + text + "}", gold) in (True, False)
    assert is_correct(text, gold) in (True, False)


def test_grading_works_inside_threads_like_the_app():
    results = {}

    def grade(name, completion, gold):
        results[name] = is_correct(completion, gold)

    threads = [
        threading.Thread(target=grade, args=("right", "</think>\\boxed{\\dfrac{11}{2}}", "5.5")),
        threading.Thread(target=grade, args=("wrong", "</think>\\boxed{\\sqrt{3}}", "\\sqrt{2}")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == {"right": True, "wrong": False}


@pytest.mark.parametrize("name", ["math.json", "minerva.json", "olympiad_bench.json", "aime.json", "amc.json"])
def test_every_shipped_benchmark_grades_its_own_boxed_gold_answers_correct(name):
    items = json.loads((BENCHMARKS / name).read_text())
    failures = [item["answer"] for item in items
                if not is_correct("</think>\n\n\\boxed{" + gold_answers(item["answer"])[0] + "}", item["answer"])]
    assert len(failures) <= 0.01 * len(items), failures


def test_degenerate_outputs_are_detected():
    assert is_degenerate("so " + "wait " * 10)
    assert is_degenerate("intro " + "let me check again " * 10 + "done")
    assert is_degenerate(" ".join(["a b c d e f g h i j k l m n o p q r s t u v w x y z A B C D"] * 10))
    assert is_degenerate("x" * 120)


def test_ordinary_reasoning_is_not_degenerate():
    assert not is_degenerate("wait " * 9)
    assert not is_degenerate("let me check again " * 9)
    assert not is_degenerate("x" * 119)
    assert not is_degenerate("7*8 = 56, write 6 carry 5. 4*8 = 32, plus 5 is 37. So 376. Wait, let me verify: 376.")
    assert not is_degenerate("")


def test_an_ngram_longer_than_the_limit_does_not_count():
    block = " ".join(f"w{i}" for i in range(31))
    assert not is_degenerate(" ".join([block] * 10))
    assert is_degenerate(" ".join([block] * 10), max_ngram=31)
