"""The paper's efficiency metric E-F1, as a pure function."""

from __future__ import annotations


def efficiency_f1(
    acc: float,
    tokens: float,
    acc_standard: float,
    tokens_standard: float,
    acc_no_think: float,
    tokens_no_think: float,
) -> float:
    """E-F1 (x100): harmonic mean of the accuracy gain and the token saving, each scaled by the gap between
    the same model's standard-prompt and no-think-prompt runs. 0 unless both are positive.

    dAcc = (Acc - Acc_std) / (Acc_std - Acc_no); dTok = (Tok_std - Tok) / (Tok_std - Tok_no).
    Accuracies may be fractions or percentages, as long as all three use the same scale.
    """
    acc_gap = acc_standard - acc_no_think
    tok_gap = tokens_standard - tokens_no_think
    if acc_gap == 0 or tok_gap == 0:
        return 0.0  # the baselines do not span a range to measure against
    d_acc = (acc - acc_standard) / acc_gap
    d_tok = (tokens_standard - tokens) / tok_gap
    if d_acc <= 0 or d_tok <= 0:
        return 0.0
    return 100.0 * 2 * d_acc * d_tok / (d_acc + d_tok)
