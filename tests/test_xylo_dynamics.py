"""Tests of the bit-accurate Xylo dynamics (snnconv.simulators.xylo.dynamics).

Every expected value below is worked out by hand from the chip's rules, not
by running the code under test:

* all states are int16 and every addition saturates to -32768..32767;
* ``decay(v, d) = v >> d`` (arithmetic shift, i.e. floor), but 1 where that
  is 0 and ``v > 0``; the effective weight is ``w << weight_shift``;
* one step: (1) input events (count clamped to 15) add the input weights,
  channels in index order, saturating after each addition; (2) the previous
  step's hidden spikes (at most 31) add the recurrent weights to the hidden
  currents and the output weights to the output currents, presynaptic
  neurons in index order; (3) hidden neurons: ``Isyn -= decay(Isyn, dash_syn)``,
  ``dv = -decay(V, dash_mem)``, ``dv = sat(dv + ΣIsyn)``, ``dv = sat(dv + bias)``,
  ``V = sat(V + dv)``, then spike while ``V >= threshold`` (at most 31 times),
  subtracting the threshold; (4) output neurons the same, one synapse, at
  most one spike per step.

The last section compares the simulator with an independent plain-Python
reference of those rules on random networks.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from snnconv.simulators.xylo.dynamics import simulate_xylo  # noqa: E402
from snnconv.simulators.xylo.spec import XyloSpec, XyloSpecError  # noqa: E402

HI, LO = 32767, -32768


def _spec(**kw) -> XyloSpec:
    """One input, one hidden neuron, one output neuron unless ``kw`` says otherwise."""
    base = dict(weights_in=[[0]], weights_rec=[[0]], weights_out=[[0]],
                dash_mem=4, dash_syn=1, dash_mem_out=4, dash_syn_out=1,
                threshold=HI, threshold_out=HI, bias=0, bias_out=0)
    base.update(kw)
    return XyloSpec(**base)


def _events(steps, *at, channels=1):
    """(steps, channels) counts; ``at`` holds (step, channel, count) triples."""
    ev = np.zeros((steps, channels), np.int64)
    for t, c, n in at:
        ev[t, c] = n
    return ev


def _eq(actual, expected):
    np.testing.assert_array_equal(np.asarray(actual), np.asarray(expected))


# ----------------------------------------------------------------------------- worked example

def test_brief_example_trace():
    spec = _spec(weights_in=[[100]], weights_out=[[50]], dash_mem=4, dash_syn=1,
                 dash_mem_out=4, dash_syn_out=1, threshold=200, threshold_out=100)
    tr = simulate_xylo(spec, _events(10, (0, 0, 3)), record=True)
    # Isyn: 300-150=150, 150-75=75, 75-37=38, 38-19=19, 19-9=10, 10-5=5, 5-2=3, 3-1=2,
    #       2-1=1, 1-decay(1)=1-1=0
    _eq(tr.isyn[:, 0, 0], [150, 75, 38, 19, 10, 5, 3, 2, 1, 0])
    # V: 150; 150-9+75=216 -> spike, 16; 16-1+38=53; 53-3+19=69; 69-4+10=75; 75-4+5=76;
    #    76-4+3=75; 75-4+2=73; 73-4+1=70; 70-4+0=66
    _eq(tr.v[:, 0], [150, 16, 53, 69, 75, 76, 75, 73, 70, 66])
    _eq(tr.spikes[:, 0], [0, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    # the spike of step 1 reaches the output at step 2: 50 -> 25; 25-12=13; 13-6=7; 4; 2; 1;
    # 1-1=0
    _eq(tr.isyn_out[:, 0], [0, 0, 25, 13, 7, 4, 2, 1, 0, 0])
    # V_out: 25; 25-1+13=37; 37-2+7=42; 42-2+4=44; 44-2+2=44; 44-2+1=43; 43-2=41; 41-2=39
    _eq(tr.v_out[:, 0], [0, 0, 25, 37, 42, 44, 44, 43, 41, 39])
    _eq(tr.spikes_out[:, 0], np.zeros(10))


# ----------------------------------------------------------------------------- saturation

def test_isyn_saturates_at_positive_bound_and_v_saturates_before_spiking():
    # w = 127 << 7 = 16256; three events: 16256, 32512, 32767 (not 48768).
    spec = _spec(weights_in=[[127]], weight_shift_in=7, dash_syn=15, dash_mem=15,
                 threshold=HI)
    tr = simulate_xylo(spec, _events(3, (0, 0, 3)), record=True)
    # step 0: Isyn = 32767 - decay(32767, 15) = 32767 - 1 = 32766; V = 0 - 0 + 32766 = 32766
    # step 1: Isyn = 32765; dv = -decay(32766, 15) + 32765 = 32764;
    #         V = sat(32766 + 32764) = 32767 >= 32767 -> 1 spike, V = 0
    #         (without saturation V = 65530 -> 1 spike and V = 32763)
    # step 2: Isyn = 32764; dv = -0 + 32764; V = 32764 < 32767
    _eq(tr.isyn[:, 0, 0], [32766, 32765, 32764])
    _eq(tr.v[:, 0], [32766, 0, 32764])
    _eq(tr.spikes[:, 0], [0, 1, 0])


def test_isyn_and_v_saturate_at_negative_bound():
    # w = -128 << 7 = -16384; three events: -16384, -32768, -32768 (not -49152).
    spec = _spec(weights_in=[[-128]], weight_shift_in=7, dash_syn=15, dash_mem=15)
    tr = simulate_xylo(spec, _events(3, (0, 0, 3)), record=True)
    # step 0: Isyn = -32768 - (-32768 >> 15 = -1) = -32767; V = -32767
    # step 1: Isyn = -32767 - (-1) = -32766; dv = -(-32767 >> 15) + Isyn = 1 - 32766 = -32765;
    #         V = sat(-32767 - 32765) = -32768
    # step 2: Isyn = -32765; dv = 1 - 32765 = -32764; V = sat(-32768 - 32764) = -32768
    _eq(tr.isyn[:, 0, 0], [-32767, -32766, -32765])
    _eq(tr.v[:, 0], [-32767, LO, LO])
    _eq(tr.spikes[:, 0], [0, 0, 0])


def test_dv_saturates_before_bias_is_added():
    # Two synapses, both 127 << 7 = 16256, three events -> both saturate at 32767,
    # decay (dash 15) -> 32766 each. dv = sat(0 + 65532) = 32767; dv = sat(32767 - 32768) = -1;
    # V = -1. (Adding the bias to the unsaturated sum would give V = 32764.)
    spec = _spec(weights_in=[[[127, 127]]], weights_rec=[[[0, 0]]], weight_shift_in=7,
                 dash_syn=15, dash_syn_2=15, dash_mem=15, bias=LO)
    tr = simulate_xylo(spec, _events(1, (0, 0, 3)), record=True)
    _eq(tr.isyn[0, 0], [32766, 32766])
    _eq(tr.v[:, 0], [-1])


def test_saturation_follows_channel_index_order_within_a_step():
    # channel 0: +127 << 7 = +16256, channel 1: -128 << 7 = -16384; dash_syn 15.
    pos_first = _spec(weights_in=[[127], [-128]], weight_shift_in=7, dash_syn=15)
    neg_first = _spec(weights_in=[[-128], [127]], weight_shift_in=7, dash_syn=15)
    # pos_first, counts (3, 1): 16256, 32512, 32767 (sat), then -16384 -> 16383; decay -> 16382
    tr = simulate_xylo(pos_first, _events(1, (0, 0, 3), (0, 1, 1), channels=2), record=True)
    _eq(tr.isyn[:, 0, 0], [16382])
    # neg_first, counts (1, 3): -16384, -128, 16128, 32384 (never saturates); decay -> 32383
    tr = simulate_xylo(neg_first, _events(1, (0, 0, 1), (0, 1, 3), channels=2), record=True)
    _eq(tr.isyn[:, 0, 0], [32383])


def test_saturation_follows_channel_index_order_on_a_loaded_current():
    # Step 0 loads Isyn to 32767 (3 events of 16256), decayed to 32766.
    # Step 1 adds +16256 (channel 0) then -16384 (channel 1):
    #   chip order: sat(32766 + 16256) = 32767; 32767 - 16384 = 16383; decay -> 16382
    #   reversed order would be 32766 - 16384 = 16382; + 16256 = 32638 -> 32637
    spec = _spec(weights_in=[[127], [-128]], weight_shift_in=7, dash_syn=15)
    ev = _events(2, (0, 0, 3), (1, 0, 1), (1, 1, 1), channels=2)
    tr = simulate_xylo(spec, ev, record=True)
    _eq(tr.isyn[:, 0, 0], [32766, 16382])
    # with the channels swapped the chip gives the other result
    spec = _spec(weights_in=[[-128], [127]], weight_shift_in=7, dash_syn=15)
    ev = _events(2, (0, 1, 3), (1, 0, 1), (1, 1, 1), channels=2)
    tr = simulate_xylo(spec, ev, record=True)
    _eq(tr.isyn[:, 0, 0], [32766, 32637])


def test_input_events_are_added_before_recurrent_spikes():
    # 1 input, 2 hidden. weights_in [1, 127] << 7 = [128, 16256]; w_rec[0, 1] = -128 << 7.
    spec = _spec(weights_in=[[1, 127]], weights_rec=[[0, -128], [0, 0]],
                 weights_out=[[0], [0]], weight_shift_in=7, weight_shift_rec=7,
                 dash_syn=15, dash_mem=15, threshold=[127, HI])
    tr = simulate_xylo(spec, _events(2, (0, 0, 1), (1, 0, 2)), record=True)
    # step 0: n0 Isyn 128 - 1 = 127, V0 = 127 -> 1 spike, V0 = 0. n1 Isyn 16256 - 1 = 16255.
    # step 1, n1: input first: 16255 + 16256 = 32511, + 16256 -> 32767 (sat);
    #   then the spike of n0: 32767 - 16384 = 16383; decay -> 16382.
    #   (recurrent first would give 16255 - 16384 + 32512 = 32383 -> 32382)
    assert tr.spikes[0, 0] == 1
    _eq(tr.isyn[:, 1, 0], [16255, 16382])


# ----------------------------------------------------------------------------- decay rounding

def test_decay_of_positive_currents_floors_with_minimum_one():
    # Two hidden neurons (w 7, dash 1) and (w 5, dash 4), one event each, threshold unreachable.
    spec = _spec(weights_in=[[7, 5]], weights_rec=np.zeros((2, 2)), weights_out=[[0], [0]],
                 dash_syn=[1, 4])
    tr = simulate_xylo(spec, _events(6, (0, 0, 1)), record=True)
    # 7 - (7 >> 1 = 3) = 4 (not 7 - 4 = 3 by rounding); 4 - 2 = 2; 2 - 1 = 1;
    # 1 - (1 >> 1 = 0 -> 1) = 0; 0; 0
    _eq(tr.isyn[:, 0, 0], [4, 2, 1, 0, 0, 0])
    # 5 >> 4 = 0 -> 1 each step: 4, 3, 2, 1, 0, 0
    _eq(tr.isyn[:, 1, 0], [4, 3, 2, 1, 0, 0])


def test_decay_of_negative_currents_floors_toward_minus_infinity():
    spec = _spec(weights_in=[[-3, -1, -100]], weights_rec=np.zeros((3, 3)),
                 weights_out=np.zeros((3, 1)), dash_syn=[1, 4, 3])
    tr = simulate_xylo(spec, _events(4, (0, 0, 1)), record=True)
    # -3 - (-3 >> 1 = -2) = -1; -1 - (-1 >> 1 = -1) = 0; 0
    _eq(tr.isyn[:, 0, 0], [-1, 0, 0, 0])
    # -1 - (-1 >> 4 = -1) = 0
    _eq(tr.isyn[:, 1, 0], [0, 0, 0, 0])
    # -100 >> 3 = -13 -> -87; -87 >> 3 = -11 -> -76; -76 >> 3 = -10 -> -66; -66 >> 3 = -9 -> -57
    # (truncation toward zero would give -88 at the first step)
    _eq(tr.isyn[:, 2, 0], [-87, -76, -66, -57])


def test_decay_of_negative_membrane_floors_toward_minus_infinity():
    # w = -128 << 2 = -512, dash_syn 1, dash_mem 2, one event.
    spec = _spec(weights_in=[[-128]], weight_shift_in=2, dash_syn=1, dash_mem=2)
    tr = simulate_xylo(spec, _events(10, (0, 0, 1)), record=True)
    # Isyn: -512 - (-256) = -256, -128, -64, -32, -16, -8, -4, -2, -1, -1 - (-1) = 0
    _eq(tr.isyn[:, 0, 0], [-256, -128, -64, -32, -16, -8, -4, -2, -1, 0])
    # V: -256
    #    -(-256 >> 2 = -64) - 128 = -64   -> -320
    #    -(-320 >> 2 = -80) - 64 = 16     -> -304
    #    -(-304 >> 2 = -76) - 32 = 44     -> -260
    #    -(-260 >> 2 = -65) - 16 = 49     -> -211
    #    -(-211 >> 2 = -53) - 8 = 45      -> -166   (truncation would give -52 -> -167)
    #    -(-166 >> 2 = -42) - 4 = 38      -> -128
    #    -(-128 >> 2 = -32) - 2 = 30      -> -98
    #    -(-98 >> 2 = -25) - 1 = 24       -> -74
    #    -(-74 >> 2 = -19) - 0 = 19       -> -55
    _eq(tr.v[:, 0], [-256, -320, -304, -260, -211, -166, -128, -98, -74, -55])


def test_negative_bias_membrane_rests_at_minus_one():
    # dash_syn 0 keeps Isyn at 0. V: 0 - 0 + 0 - 1 = -1; then -(-1 >> 4 = -1) - 1 = 0 -> stays -1
    # (truncating decay would give -1 >> 4 = 0 and V = -2, -3, ...)
    spec = _spec(dash_syn=0, dash_mem=4, bias=-1)
    tr = simulate_xylo(spec, np.zeros((4, 1), int), record=True)
    _eq(tr.v[:, 0], [-1, -1, -1, -1])


def test_dash_syn_zero_discards_input():
    # Isyn = 500 - (500 >> 0) = 0 before V sees it
    spec = _spec(weights_in=[[100]], dash_syn=0, dash_mem=4, threshold=1)
    tr = simulate_xylo(spec, _events(3, (0, 0, 5), (1, 0, 15)), record=True)
    _eq(tr.isyn[:, 0, 0], [0, 0, 0])
    _eq(tr.v[:, 0], [0, 0, 0])
    _eq(tr.spikes[:, 0], [0, 0, 0])


def test_dash_mem_zero_pins_the_most_negative_membrane_like_int16():
    # dash_mem 0: decay(V, 0) = V, so dv = -V + ΣIsyn + bias and V + dv = ΣIsyn + bias: the
    # membrane forgets -- except at V = -32768, where the chip's int16 negation
    # -(-32768) wraps to -32768 (XyloSim: int16_t dv_mem = -decay(v_mem, dash_mem)):
    # dv = sat(sat(-32768 + ΣIsyn) + bias) and V = sat(-32768 + dv) stays -32768 unless
    # ΣIsyn + bias > 32768.
    # w = -128 << 7 = -16384, two events at step 0; dash_syn 1; bias -16384.
    spec = _spec(weights_in=[[-128]], weight_shift_in=7, dash_syn=1, dash_mem=0,
                 bias=-16384)
    tr = simulate_xylo(spec, _events(4, (0, 0, 2)), record=True)
    # Isyn: sat(-32768) -> -32768 - (-16384) = -16384, -8192, -4096, -2048
    _eq(tr.isyn[:, 0, 0], [-16384, -8192, -4096, -2048])
    # step 0: dv = -0 - 16384 - 16384 = -32768; V = -32768
    # step 1: dv = wrap(32768) = -32768; sat(-32768 - 8192) = -32768; sat(... - 16384);
    #         V = sat(-32768 - 32768) = -32768, and so on: pinned.
    #         (a plain negation: V = -8192 - 16384 = -24576, then -20480, -18432)
    _eq(tr.v[:, 0], [LO, LO, LO, LO])


def test_dash_mem_15_still_leaks_one_per_step():
    spec = _spec(weights_in=[[100]], dash_syn=1, dash_mem=15, threshold=1000)
    tr = simulate_xylo(spec, _events(12, (0, 0, 1)), record=True)
    # Isyn: 100-50=50, 25, 25-12=13, 13-6=7, 7-3=4, 2, 1, 1-1=0, 0...
    _eq(tr.isyn[:, 0, 0], [50, 25, 13, 7, 4, 2, 1, 0, 0, 0, 0, 0])
    # V: 50; each later step -decay(V, 15) = -1 (V > 0, V >> 15 = 0): 50-1+25=74, 74-1+13=86,
    #    86-1+7=92, 92-1+4=95, 95-1+2=96, 96-1+1=96, 95, 94, 93, 92, 91
    _eq(tr.v[:, 0], [50, 74, 86, 92, 95, 96, 96, 95, 94, 93, 92, 91])


# ----------------------------------------------------------------------------- spikes

def test_spike_count_clamps_31_hidden_and_1_output():
    # w_in = 127 << 7 = 16256, one event; dash_syn 15; threshold 100; w_out = 1.
    spec = _spec(weights_in=[[127]], weights_out=[[1]], weight_shift_in=7, dash_syn=15,
                 dash_mem=15, threshold=100, dash_syn_out=15, dash_mem_out=15,
                 threshold_out=1)
    tr = simulate_xylo(spec, _events(3, (0, 0, 1)), record=True)
    # hidden: step 0: Isyn 16256 - 1 = 16255, V = 16255 -> 162 would fit, 31 spikes,
    #         V = 16255 - 3100 = 13155
    #         step 1: Isyn 16254; V = 13155 - 1 + 16254 = 29408 -> 31 spikes, 26308
    #         step 2: Isyn 16253; V = sat(26308 - 1 + 16253 = 42560) = 32767 -> 31, 29667
    _eq(tr.isyn[:, 0, 0], [16255, 16254, 16253])
    _eq(tr.v[:, 0], [13155, 26308, 29667])
    _eq(tr.spikes[:, 0], [31, 31, 31])
    # output: step 1: Isyn_out = 31 * 1 = 31 -> 30; V_out = 30 -> 1 spike (not 30), 29
    #         step 2: Isyn_out = 30 + 31 = 61 -> 60; V_out = 29 - 1 + 60 = 88 -> 1 spike, 87
    _eq(tr.isyn_out[:, 0], [0, 30, 60])
    _eq(tr.v_out[:, 0], [0, 29, 87])
    _eq(tr.spikes_out[:, 0], [0, 1, 1])


def test_input_count_clamps_at_15():
    spec = _spec(weights_in=[[10]], dash_syn=15)
    ev20 = _events(1, (0, 0, 20))
    ev15 = _events(1, (0, 0, 15))
    ev16 = _events(1, (0, 0, 16))
    tr = simulate_xylo(spec, np.stack([ev20, ev15, ev16]), record=True)
    # 15 * 10 = 150 -> 150 - (150 >> 15 = 0 -> 1) = 149 for all three counts
    _eq(tr.isyn[:, 0, 0, 0], [149, 149, 149])
    _eq(tr.v[:, 0, 0], [149, 149, 149])


def test_one_step_latency_per_layer():
    # input -> n0 -> n1 (via weights_rec) -> output, all weights 100, dash_syn 1 -> 50 reaches V.
    spec = _spec(weights_in=[[100, 0]], weights_rec=[[0, 100], [0, 0]],
                 weights_out=[[0], [100]], dash_syn=1, dash_mem=4, threshold=50,
                 dash_syn_out=1, dash_mem_out=4, threshold_out=50)
    tr = simulate_xylo(spec, _events(6, (0, 0, 1)), record=True)
    # n0: V 50 at step 0 -> spike, V 0; then 25; 25-1+13=37; 37-2+7=42; 42-2+4=44; 44-2+2=44
    # n1: the spike of n0 (step 0) arrives at step 1: 50 -> spike; then the same as n0
    # out: the spike of n1 (step 1) arrives at step 2: 50 -> spike; then 25, 37, 42
    _eq(tr.spikes[:, 0], [1, 0, 0, 0, 0, 0])
    _eq(tr.spikes[:, 1], [0, 1, 0, 0, 0, 0])
    _eq(tr.spikes_out[:, 0], [0, 0, 1, 0, 0, 0])
    _eq(tr.v[:, 0], [0, 25, 37, 42, 44, 44])
    _eq(tr.v[:, 1], [0, 0, 25, 37, 42, 44])
    _eq(tr.v_out[:, 0], [0, 0, 0, 25, 37, 42])


def test_bias_every_step_and_reset_by_subtraction():
    # no input (dash_syn 0), bias 30, dash_mem 15, threshold 100; the output neuron the same.
    spec = _spec(dash_syn=0, dash_mem=15, bias=30, threshold=100,
                 dash_syn_out=0, dash_mem_out=15, bias_out=30, threshold_out=100)
    tr = simulate_xylo(spec, np.zeros((8, 1), int), record=True)
    # V: 30; 30-1+30=59; 88; 117 -> spike, 17; 17-1+30=46; 75; 104 -> spike, 4; 4-1+30=33
    v = [30, 59, 88, 17, 46, 75, 4, 33]
    s = [0, 0, 0, 1, 0, 0, 1, 0]
    _eq(tr.v[:, 0], v)
    _eq(tr.spikes[:, 0], s)
    _eq(tr.v_out[:, 0], v)
    _eq(tr.spikes_out[:, 0], s)


def test_output_spike_subtracts_one_threshold():
    # hidden threshold 1, w_in = 32, one event, dash_syn 15: Isyn 31, V 31 -> 31 spikes, V 0.
    # step 1: hidden Isyn 30 -> V 30 -> 30 spikes. output: Isyn_out 310 - 1 = 309 ->
    #         V_out 309 >= 100 -> 1 spike, V_out = 209.
    spec = _spec(weights_in=[[32]], weights_out=[[10]], dash_syn=15, dash_mem=15, threshold=1,
                 dash_syn_out=15, dash_mem_out=15, threshold_out=100)
    tr = simulate_xylo(spec, _events(2, (0, 0, 1)), record=True)
    _eq(tr.spikes[:, 0], [31, 30])
    _eq(tr.isyn_out[:, 0], [0, 309])
    _eq(tr.v_out[:, 0], [0, 209])
    _eq(tr.spikes_out[:, 0], [0, 1])


# ----------------------------------------------------------------------------- two synapses

def test_two_synapses_decay_separately_and_sum():
    spec = _spec(weights_in=[[[100, -40]]], weights_rec=[[[0, 0]]], dash_syn=1, dash_syn_2=2,
                 dash_mem=4, threshold=1000)
    tr = simulate_xylo(spec, _events(5, (0, 0, 1)), record=True)
    assert tr.isyn.shape == (5, 1, 2)
    # synapse 1 (dash 1): 100-50=50, 25, 13, 7, 4
    _eq(tr.isyn[:, 0, 0], [50, 25, 13, 7, 4])
    # synapse 2 (dash 2): -40-(-10)=-30, -30-(-8)=-22, -22-(-6)=-16, -16-(-4)=-12, -12-(-3)=-9
    _eq(tr.isyn[:, 0, 1], [-30, -22, -16, -12, -9])
    # V: 50-30=20; 20-1+25-22=22; 22-1+13-16=18; 18-1+7-12=12; 12-(12>>4=0 -> 1)+4-9=6
    _eq(tr.v[:, 0], [20, 22, 18, 12, 6])


def test_two_synapse_recurrent_weights_reach_their_own_synapse():
    # n0 spikes at step 0 (w_in 100 on synapse 1, threshold 50); its recurrent weights to n1
    # are (+80, -40) on synapses (1, 2) with dash (1, 2).
    spec = _spec(weights_in=[[[100, 0], [0, 0]]],
                 weights_rec=[[[0, 0], [80, -40]], [[0, 0], [0, 0]]],
                 weights_out=[[0], [0]], dash_syn=1, dash_syn_2=2, dash_mem=4,
                 threshold=[50, 1000])
    tr = simulate_xylo(spec, _events(3, (0, 0, 1)), record=True)
    _eq(tr.spikes[:, 0], [1, 0, 0])
    # n1: step 1: syn1 80 -> 40, syn2 -40 -> -30; V = 10
    #     step 2: syn1 40 -> 20, syn2 -30 -> -22; V = 10 - (10 >> 4 = 0 -> 1) + 20 - 22 = 7
    _eq(tr.isyn[:, 1, 0], [0, 40, 20])
    _eq(tr.isyn[:, 1, 1], [0, -30, -22])
    _eq(tr.v[:, 1], [0, 10, 7])


# ----------------------------------------------------------------------------- reference

def _sat(x):
    return max(LO, min(HI, x))


def _decay(v, d):
    r = v >> d
    return 1 if (r == 0 and v > 0) else r


def _neg16(x):
    """-x in int16: -(-32768) wraps to -32768."""
    return ((-x + 32768) % 65536) - 32768


def _reference(p, events):
    """Plain-Python chip: ``p`` holds nested lists of Python ints; events (T, I)."""
    w_in, w_rec, w_out = p["w_in"], p["w_rec"], p["w_out"]  # [pre][post][syn] x2, [pre][post]
    n_in, n_hid, n_syn, n_out = len(w_in), len(w_rec), len(w_rec[0][0]), len(w_out[0])
    dash_syn = [p["dash_syn"], p["dash_syn_2"]]
    isyn = [[0] * n_syn for _ in range(n_hid)]
    v = [0] * n_hid
    prev = [0] * n_hid
    isyn_o = [0] * n_out
    v_o = [0] * n_out
    out = {k: [] for k in ("spikes", "spikes_out", "isyn", "v", "isyn_out", "v_out")}
    for t in range(len(events)):
        # 1. input events, channels in order
        for i in range(n_in):
            for _ in range(min(int(events[t][i]), 15)):
                for j in range(n_hid):
                    for s in range(n_syn):
                        isyn[j][s] = _sat(isyn[j][s] + (w_in[i][j][s] << p["shift_in"]))
        # 2. previous hidden spikes, presynaptic neurons in order
        for q in range(n_hid):
            for _ in range(min(prev[q], 31)):
                for j in range(n_hid):
                    for s in range(n_syn):
                        isyn[j][s] = _sat(isyn[j][s] + (w_rec[q][j][s] << p["shift_rec"]))
                for o in range(n_out):
                    isyn_o[o] = _sat(isyn_o[o] + (w_out[q][o] << p["shift_out"]))
        # 3. hidden neurons
        spikes = [0] * n_hid
        for j in range(n_hid):
            total = 0
            for s in range(n_syn):
                isyn[j][s] -= _decay(isyn[j][s], dash_syn[s][j])
                total += isyn[j][s]
            dv = _neg16(_decay(v[j], p["dash_mem"][j]))
            dv = _sat(dv + total)
            dv = _sat(dv + p["bias"][j])
            v[j] = _sat(v[j] + dv)
            while v[j] >= p["threshold"][j] and spikes[j] < 31:
                spikes[j] += 1
                v[j] -= p["threshold"][j]
        # 4. output neurons
        spikes_o = [0] * n_out
        for o in range(n_out):
            isyn_o[o] -= _decay(isyn_o[o], p["dash_syn_out"][o])
            dv = _neg16(_decay(v_o[o], p["dash_mem_out"][o]))
            dv = _sat(dv + isyn_o[o])
            dv = _sat(dv + p["bias_out"][o])
            v_o[o] = _sat(v_o[o] + dv)
            while v_o[o] >= p["threshold_out"][o] and spikes_o[o] < 1:
                spikes_o[o] += 1
                v_o[o] -= p["threshold_out"][o]
        prev = spikes
        out["spikes"].append(list(spikes))
        out["spikes_out"].append(list(spikes_o))
        out["isyn"].append([list(row) for row in isyn])
        out["v"].append(list(v))
        out["isyn_out"].append(list(isyn_o))
        out["v_out"].append(list(v_o))
    return {k: np.array(val, dtype=np.int64) for k, val in out.items()}


def _random_network(rng, n_syn, regime, n_in=3, n_hid=5, n_out=2):
    if regime == "small":        # no saturation: small weights, no shift
        w = lambda *s: rng.integers(-20, 21, s)   # noqa: E731
        shifts = [0, 0, 0]
        thr = lambda n: rng.integers(20, 400, n)  # noqa: E731
        bias = lambda n: rng.integers(-5, 6, n)   # noqa: E731
    elif regime == "large":      # heavy saturation
        w = lambda *s: rng.integers(-128, 128, s)  # noqa: E731
        shifts = list(rng.integers(5, 8, 3))
        thr = lambda n: rng.integers(1, 32768, n)  # noqa: E731
        bias = lambda n: rng.integers(-32768, 32768, n)  # noqa: E731
    else:                        # anything
        w = lambda *s: rng.integers(-128, 128, s)  # noqa: E731
        shifts = list(rng.integers(0, 8, 3))
        thr = lambda n: rng.integers(1, 5000, n)  # noqa: E731
        bias = lambda n: rng.integers(-200, 201, n)  # noqa: E731
    p = dict(w_in=w(n_in, n_hid, n_syn), w_rec=w(n_hid, n_hid, n_syn), w_out=w(n_hid, n_out),
             shift_in=shifts[0], shift_rec=shifts[1], shift_out=shifts[2],
             dash_syn=rng.integers(0, 16, n_hid), dash_syn_2=rng.integers(0, 16, n_hid),
             dash_mem=rng.integers(0, 16, n_hid), threshold=thr(n_hid), bias=bias(n_hid),
             dash_syn_out=rng.integers(0, 16, n_out), dash_mem_out=rng.integers(0, 16, n_out),
             threshold_out=thr(n_out), bias_out=bias(n_out))
    if regime == "small":        # fast decays keep the currents far from the bounds
        for k in ("dash_syn", "dash_syn_2", "dash_mem", "dash_syn_out", "dash_mem_out"):
            p[k] = np.minimum(p[k], 3)
    # dash 0 makes a synapse deaf; keep a few so that regime is seen but currents flow
    p["dash_syn"] = np.where(rng.random(n_hid) < 0.15, 0, np.maximum(p["dash_syn"], 1))
    p["dash_syn_2"] = np.maximum(p["dash_syn_2"], 1)
    spec_kw = dict(weights_in=p["w_in"] if n_syn == 2 else p["w_in"][..., 0],
                   weights_rec=p["w_rec"] if n_syn == 2 else p["w_rec"][..., 0],
                   weights_out=p["w_out"], weight_shift_in=int(p["shift_in"]),
                   weight_shift_rec=int(p["shift_rec"]), weight_shift_out=int(p["shift_out"]),
                   dash_syn=p["dash_syn"], dash_mem=p["dash_mem"], threshold=p["threshold"],
                   bias=p["bias"], dash_syn_out=p["dash_syn_out"],
                   dash_mem_out=p["dash_mem_out"], threshold_out=p["threshold_out"],
                   bias_out=p["bias_out"])
    if n_syn == 2:
        spec_kw["dash_syn_2"] = p["dash_syn_2"]
    ref = {k: (v.tolist() if isinstance(v, np.ndarray) else int(v)) for k, v in p.items()}
    return XyloSpec(**spec_kw), ref


@pytest.mark.parametrize("n_syn", [1, 2])
@pytest.mark.parametrize("regime,seed", [("small", 1), ("mixed", 2), ("large", 3)])
def test_matches_plain_python_reference_on_random_networks(n_syn, regime, seed):
    rng = np.random.default_rng(seed * 10 + n_syn)
    spec, ref_params = _random_network(rng, n_syn, regime)
    steps, batch = 30, 3
    counts = rng.integers(0, 21, (batch, steps, 3))
    events = np.where(rng.random(counts.shape) < 0.35, counts, 0)
    tr = simulate_xylo(spec, events, record=True)
    saturated = spiked = 0
    for b in range(batch):
        ref = _reference(ref_params, events[b].tolist())
        for key in ("spikes", "spikes_out", "isyn", "v", "isyn_out", "v_out"):
            np.testing.assert_array_equal(getattr(tr, key)[b], ref[key],
                                          err_msg=f"{key}, sample {b}")
        saturated += int(np.any(np.abs(ref["isyn"]) >= HI) or np.any(np.abs(ref["v"]) >= HI))
        spiked += int(ref["spikes"].sum() > 0)
    # the random networks must exercise what they are meant to (the simulator takes its
    # exact matrix-product path when nothing saturates, an in-order replay otherwise)
    assert spiked > 0
    if regime == "large":
        assert saturated > 0
    if regime == "small":
        assert saturated == 0


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("kw", [
    dict(weights_in=[[128]]),
    dict(weights_in=[[-129]]),
    dict(weights_rec=[[200]]),
    dict(weights_out=[[-1000]]),
    dict(weights_in=[[1.5]]),
    dict(threshold=0),
    dict(threshold=-5),
    dict(threshold_out=0),
    dict(threshold=40000),
    dict(bias=32768),
    dict(bias_out=-32769),
    dict(dash_mem=16),
    dict(dash_syn=16),
    dict(dash_syn=-1),
    dict(dash_syn_out=16),
    dict(dash_mem_out=20),
    dict(weight_shift_in=8),
    dict(weight_shift_rec=-1),
    dict(weight_shift_out=8),
    dict(weight_shift_in=1.5),
    dict(weights_rec=[[0, 0], [0, 0]]),                         # N mismatch
    dict(weights_out=[[0], [0]]),                               # N mismatch
    dict(weights_in=[[[0, 0]]]),                                # 3-d in, 2-d rec
    dict(weights_in=[[[0, 0, 0]]], weights_rec=[[[0, 0, 0]]]),  # 3 synapses
    dict(weights_in=[[[0, 0]]], weights_rec=[[[0]]]),           # synapse counts differ
    dict(weights_out=[[[0]]]),                                  # 3-d output weights
    dict(threshold=[1, 2]),                                     # per-neuron length
    dict(dash_mem_out=[1, 2]),
])
def test_spec_validation_rejects(kw):
    with pytest.raises(XyloSpecError):
        _spec(**kw)


def test_spec_accepts_bounds_and_broadcasts():
    spec = _spec(weights_in=[[-128, 127]], weights_rec=[[0, 0], [0, 0]], weights_out=[[0], [0]],
                 threshold=HI, threshold_out=1, bias=LO, bias_out=HI, dash_mem=15,
                 dash_syn=0, weight_shift_in=7, weight_shift_rec=0, weight_shift_out=7)
    assert spec.num_hidden == 2 and spec.num_synapses == 1
    _eq(spec.threshold, [HI, HI])
    _eq(spec.dash_syn_2, spec.dash_syn)
