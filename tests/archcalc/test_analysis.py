"""archcalc.analysis: rows, totals, joins, shortcuts, warnings and memory, against
arithmetic written out by hand."""

from __future__ import annotations

import pytest

import archcalc
from archcalc import zoo
from archcalc.algebra import RF, Ops, Params
from archcalc.analysis import Memory, Report, analyze
from archcalc.errors import SpecError, UsageError
from archcalc.spec import parse


def run(body: str, convention: str = "full") -> Report:
    return analyze(parse(body, "t.arch"), convention)


def fault(body: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        run(body)
    return info.value


# -- totals are column sums -----------------------------------------------------------------
@pytest.mark.parametrize("name", zoo.names())
@pytest.mark.parametrize("convention", ["full", "torchinfo"])
def test_totals_are_the_column_sums(name: str, convention: str) -> None:
    rep = analyze(archcalc.load(name), convention)
    totals = rep.totals
    assert totals.weights == sum(r.params.weights for r in rep.rows)
    assert totals.biases == sum(r.params.biases for r in rep.rows)
    assert totals.params == totals.weights + totals.biases
    assert totals.buffers == sum(r.params.buffers for r in rep.rows)
    assert totals.macs == sum(r.macs for r in rep.rows)
    assert totals.flops == sum(r.flops for r in rep.rows)
    new = sum(r.activations for r in rep.rows if not r.inplace)
    assert totals.activations == rep.input_elements + new


def test_report_header_fields() -> None:
    rep = run("model tiny\nsource a book\ninput 4x4x2\nconv1-3", "fvcore")
    assert (rep.model, rep.source, rep.input_shape) == ("tiny", "a book", (2, 4, 4))
    assert rep.convention.name == "fvcore"
    assert rep.input_elements == 32
    assert rep.warnings == ()


# -- a plain chain, by hand -----------------------------------------------------------------
CHAIN = """\
input 4x4x1
conv3-2
relu
maxpool
flatten
FC-3
soft-max
"""
# shapes (C, H, W): (1,4,4)=16 -> conv (2,4,4)=32 -> relu in place -> maxpool (2,2,2)=8
#   -> flatten, a view (8,) -> FC (3,) -> softmax (3,)
# params: conv 3*3*1*2 = 18 + 2 biases; FC 8*3 = 24 + 3 biases: 47 in all


def test_ceil_pool_window_may_run_past_a_small_input() -> None:
    # torch: (2 + 0 - 3 + (2 - 1)) // 2 + 1 = 1 window, starting at pixel 0 inside the input
    # (it was rejected as "kernel 3 is larger than the padded input", failing SqueezeNet at
    # 24 px); without ceil mode the same window does not fit.
    assert run("input 2x2x1\nmaxpool3 s=2 ceil=true").rows[0].out_shape == (1, 1, 1)
    with pytest.raises(SpecError, match="kernel 3 is larger than the padded input"):
        run("input 2x2x1\nmaxpool3 s=2")
    with pytest.raises(SpecError, match="kernel 5 is larger"):  # overruns by a whole stride
        run("input 3x3x1\nmaxpool5 s=2 ceil=true")


def test_residual_shortcut_stride_comes_from_the_body() -> None:
    # A stride-2 block on a 1x1 map: the projection keeps stride 2, so the field grows as the
    # body's does. conv3 s=2 p=1 on a 1x1 map reaches input rows [-1, 1]; the shortcut's
    # conv1 s=2 sees row 0. An inferred stride ceil(1/1) = 1 gave the same here but a field
    # stride of 1 downstream: the next conv3 then grew the field by 2 instead of 4.
    rep = run("input 1x1x4\nresidual shortcut=B { conv3-8 s=2 }\nconv3-8")
    add, after = rep.rows[-2], rep.rows[-1]
    assert add.rf is not None and add.rf.stride == (2, 2)
    assert after.rf is not None and after.rf.size == (3 + 2 * 2, 3 + 2 * 2)
    # A body that shrinks 8 -> 4 with stride 1 (two unpadded conv3) gets no invented stride:
    with pytest.raises(SpecError, match="shortcut gives 8x8x8 but the body gives 4x4x8"):
        run("input 8x8x4\nresidual shortcut=B { conv3-8 p=0; conv3-8 p=0 }")


def test_chain_rows() -> None:
    rep = run(CHAIN)
    assert [r.out_shape for r in rep.rows] == [(2, 4, 4), (2, 4, 4), (2, 2, 2), (8,), (3,),
                                               (3,)]
    assert rep.rows[0].in_shape == (1, 4, 4)
    assert [r.params for r in rep.rows] == [Params(18, 2), Params(), Params(), Params(),
                                            Params(24, 3), Params()]
    assert [r.inplace for r in rep.rows] == [False, True, False, True, False, False]
    assert [r.formula and str(r.formula) for r in rep.rows] == [
        "(3*3*1)*2", None, None, None, "8*3", None]
    assert [r.title for r in rep.rows] == ["CONV3-2", "RELU", "POOL2", "FLATTEN", "FC-3",
                                           "SOFT-MAX"]
    assert [r.path for r in rep.rows] == ["1", "2", "3", "4", "5", "6"]
    assert all(r.depth == 0 for r in rep.rows)
    assert rep.rows[0].loc is not None and rep.rows[0].loc.line == 2
    # conv: 32 outputs * 9 MACs; FC: 8*3
    assert [r.macs for r in rep.rows] == [288, 0, 0, 0, 24, 0]
    assert rep.totals.params == 47


def test_chain_receptive_fields() -> None:
    rfs = [r.rf for r in run(CHAIN).rows]
    assert rfs[0] == RF((3, 3), (1, 1), (-1, -1))
    assert rfs[1] == rfs[0]
    assert rfs[2] == RF((4, 4), (2, 2), (-1, -1))  # 3 + 1*1, j = 2
    assert rfs[3] == RF((6, 6), (2, 2), (-1, -1))  # flatten joins 2x2 fields: 4 + 1*2
    assert rfs[4] == rfs[5] == rfs[3]


def test_inference_peak_memory_by_hand() -> None:
    # live elements while each layer runs (its input + its output; in place: input only):
    #   conv 16 + 32 = 48; relu 32; maxpool 32 + 8 = 40; flatten 8; FC 8 + 3; softmax 3 + 3
    rep = run(CHAIN)
    assert rep.peak_live == 48
    mem = rep.inference_memory(batch=2, dtype_bytes=4)
    assert mem == Memory(batch=2, dtype_bytes=4, weights=47 * 4, buffers=0, gradients=0,
                         optimizer=0, activations=48 * 2 * 4)
    assert mem.total == 188 + 384


def test_training_memory_by_hand() -> None:
    # kept for backward: the input 16, conv 32, maxpool 8, FC 3, softmax 3 = 62 (the
    # in-place relu and the flatten view add nothing)
    rep = run(CHAIN)
    assert rep.totals.activations == 62
    mem = rep.training_memory(batch=2, dtype_bytes=4, optimizer_states=2)
    assert mem == Memory(2, 4, weights=188, buffers=0, gradients=188, optimizer=2 * 188,
                         activations=62 * 2 * 4)
    assert mem.total == 188 + 188 + 376 + 496
    assert rep.training_memory(batch=1, dtype_bytes=2, optimizer_states=1).total == (
        47 * 2 * 3 + 62 * 2)  # weights + gradients + one state, fp16


def test_dropout_masks_are_kept_for_training_but_free_at_inference() -> None:
    rep = run("input 4\nFC-4\ndropout\nFC-2")
    # inference: FC 4 + 4 = 8; dropout in place 4; FC 4 + 2 = 6
    assert rep.peak_live == 8
    assert rep.totals.activations == 4 + 4 + 2  # new tensors at inference
    # training keeps the input 4, FC 4, the dropout output 4 and FC 2
    assert rep.training_memory().activations == (4 + 4 + 4 + 2) * 4


def test_buffers_count_in_memory() -> None:
    rep = run("input 2x2x3\nbn")
    assert rep.totals.buffers == 6  # running mean and variance of 3 channels
    assert rep.inference_memory().buffers == 6 * 4
    assert rep.inference_memory().weights == 6 * 4  # gamma and beta


def test_vector_input_has_no_receptive_field() -> None:
    rep = run("input 3072\nFC-512\nrelu\nFC-10")
    assert all(r.rf is None for r in rep.rows)
    assert rep.totals.params == 3072 * 512 + 512 + 512 * 10 + 10 == 1_578_506


def test_input_shape_override() -> None:
    graph = parse("input 8x8x3\nconv3-4 s=2")
    assert analyze(graph).rows[0].out_shape == (4, 4, 4)
    assert analyze(graph, input_shape=(3, 16, 16)).rows[0].out_shape == (4, 8, 8)
    assert analyze(parse("input 9x2\nconv3-4 s=2")).rows[0].out_shape == (4, 5)  # (C, L)
    for bad in [(3, 0, 8), (3, 8, 8, 1), (-1,), (3, 8, 8.0), (3, 0)]:
        with pytest.raises(UsageError, match="input shape must be"):
            analyze(graph, input_shape=bad)  # type: ignore[arg-type]


# -- concatenation --------------------------------------------------------------------------
INCEPTION = """\
input 8x8x4
concat {
  branch { conv1-2 }
  branch { conv3-3 }
  branch { maxpool3 s=1 p=1 }
}
"""


def test_concat_joins_channels() -> None:
    rep = run(INCEPTION)
    assert [(r.path, r.kind, r.depth) for r in rep.rows] == [
        ("1.b1.1", "conv", 1), ("1.b2.1", "conv", 1), ("1.b3.1", "pool", 1),
        ("1", "concat", 0)]
    join = rep.rows[-1]
    assert join.out_shape == (2 + 3 + 4, 8, 8)
    assert join.in_shape == (4, 8, 8)
    assert join.params == Params() and join.ops == Ops()
    assert not join.inplace and join.stored  # torch.cat makes a new tensor
    # fields: 1x1 at 0; 3x3 from -1; 3x3 from -1: all centred on 0, union 3x3 from -1
    assert join.rf == RF((3, 3), (1, 1), (-1, -1))
    assert rep.warnings == ()
    # params: 4*2 + 2 and 3*3*4*3 + 3
    assert rep.totals.params == 10 + 111


def test_concat_peak_memory_by_hand() -> None:
    # input 4 elements; branch 1 makes 8 while x lives: 4 + 8 = 12;
    # branch 2 makes 12 while x and branch 1 live: 8 + 4 + 12 = 24;
    # the join copies both (8 + 12) into 20 new elements: 8 + 12 + 20 = 40
    rep = run("input 2x2x1\nconcat { branch { conv1-2 } branch { conv1-3 } }")
    assert rep.peak_live == 40


def test_concat_of_vectors() -> None:
    rep = run("input 6\nconcat { branch { FC-2 } branch { FC-3 } }")
    assert rep.rows[-1].out_shape == (5,)


def test_concat_branches_must_agree_spatially() -> None:
    err = fault("input 8x8x4\n  concat {\n branch { conv3-2 s=2 }\n branch { conv3-2 } }")
    assert err.message == "concat branches must agree in height and width: 4x4x2, 8x8x2"
    assert (err.loc.line, err.loc.col) == (2, 3)  # type: ignore[union-attr]
    assert err.render().splitlines()[1:] == ["    concat {", "    ^"]


def test_misaligned_concat_warns_with_the_location() -> None:
    # a 1x1 stride-2 conv sees pixel 0 (centre 0); a 2x2 stride-2 pool sees 0..1 (centre 0.5)
    rep = run("input 8x8x4\nconcat { branch { conv1-4 s=2 } branch { maxpool } }")
    assert rep.rows[-1].out_shape == (8, 4, 4)
    assert rep.warnings == ("t.arch:2:1: concat branches are misaligned (centre (0.0, 0.0) "
                            "stride 2; centre (0.5, 0.5) stride 2)",)


# -- residual blocks ------------------------------------------------------------------------
def test_identity_residual() -> None:
    rep = run("input 8x8x4\nresidual { conv3-4; bn; relu; conv3-4; bn }\nrelu")
    assert [(r.path, r.kind, r.depth) for r in rep.rows] == [
        ("1.1", "conv", 1), ("1.2", "bn", 1), ("1.3", "act", 1), ("1.4", "conv", 1),
        ("1.5", "bn", 1), ("1", "add", 0), ("2", "act", 0)]
    add = rep.rows[5]
    assert add.label == "add" and add.out_shape == (4, 8, 8)
    assert add.ops == Ops(add=256) and add.flops == 256  # one add per element
    assert add.inplace and not add.stored
    # two convs (3*3*4*4 + 4 = 148 each) and two BNs (4 + 4 each)
    assert rep.totals.params == 2 * 148 + 2 * 8
    assert rep.warnings == ()


def test_residual_peak_memory_by_hand() -> None:
    # x = 4 elements stays live for the add. conv 1: 4 + 4 = 8; conv 2 runs with x, its
    # input and its output: 4 + 4 + 4 = 12; the add holds body and x: 8
    assert run("input 2x2x1\nresidual { conv3-1; conv3-1 }").peak_live == 12


def test_projection_shortcut_peak_memory_by_hand() -> None:
    # x = 8. body conv: 8 + 8 = 16. shortcut conv: body output, x and its output: 24;
    # shortcut BN: body output, its input and its output: 24; add: 8 + 8 = 16
    assert run("input 2x2x2\nresidual shortcut=C { conv3-2 }").peak_live == 24


def test_option_a_shortcut() -> None:
    rep = run("input 8x8x4\nresidual shortcut=A { conv3-8 s=2; bn }")
    assert [(r.path, r.kind) for r in rep.rows] == [
        ("1.1", "conv"), ("1.2", "bn"), ("1.s1", "zeropad"), ("1", "add")]
    shortcut = rep.rows[2]
    assert shortcut.label == "shortcut A (subsample 2, zero-pad to 8)"
    assert shortcut.out_shape == (8, 4, 4) and shortcut.params == Params()
    assert shortcut.depth == 1
    # conv3 s2 p1 covers -1..1 (centre 0); the subsample sees pixel 0: aligned
    assert rep.rows[-1].rf == RF((3, 3), (2, 2), (-1, -1))
    assert rep.rows[-1].ops == Ops(add=8 * 4 * 4)
    assert rep.totals.params == (3 * 3 * 4 * 8 + 8) + (8 + 8)
    assert rep.warnings == ()


def test_option_b_shortcut_projects_where_the_shape_changes() -> None:
    rep = run("input 8x8x4\nresidual shortcut=B { conv3-8 s=2; bn }")
    assert [(r.label, r.kind) for r in rep.rows[2:]] == [
        ("shortcut conv1-8 s=2 bias=false", "conv"), ("shortcut bn", "bn"), ("add", "add")]
    assert rep.rows[2].params == Params(4 * 8, 0)  # 1*1*4*8, no bias
    assert rep.rows[3].params == Params(8, 8, 16)
    assert rep.totals.params == 296 + 16 + 32 + 16
    assert [r.kind for r in run("input 8x8x4\nresidual shortcut=B { conv3-4 }").rows] == [
        "conv", "add"]  # shape kept: identity


def test_option_c_projects_always() -> None:
    rep = run("input 8x8x4\nresidual shortcut=C { conv3-4 }")
    assert [r.label for r in rep.rows] == [
        "conv3-4", "shortcut conv1-4 s=1 bias=false", "shortcut bn", "add"]
    assert rep.totals.params == (3 * 3 * 4 * 4 + 4) + 4 * 4 + (4 + 4)


def test_projection_bias_by_hand() -> None:
    rep = run("input 8x8x4\nresidual shortcut=B bias=true { conv3-8 s=2 bias=false; bn }")
    projection = rep.rows[2]
    assert projection.label == "shortcut conv1-8 s=2 bias=true"
    assert projection.params == Params(1 * 1 * 4 * 8, 8)  # one bias per output channel
    assert projection.ops == Ops(macs=(4 * 4 * 8) * 4, bias=4 * 4 * 8)
    # body conv 3*3*4*8 without bias, its BN 8+8; projection 1*1*4*8 + 8, its BN 8+8
    assert rep.totals.params == 3 * 3 * 4 * 8 + (8 + 8) + (1 * 1 * 4 * 8 + 8) + (8 + 8) == 360
    assert rep.totals.buffers == 2 * 8 + 2 * 8  # running mean and variance of both BNs


@pytest.mark.parametrize(
    ("convention", "macs", "flops"),
    [("full", 0, 4 * 4 * 8),  # one addition per output element
     ("torchinfo", 4 * 4 * 8, 2 * 4 * 4 * 8),  # bias parameters times output positions
     ("fvcore", 0, 0), ("flopcounter", 0, 0)],  # neither counts biases
)
def test_projection_bias_is_counted_as_any_conv_bias(convention: str, macs: int,
                                                     flops: int) -> None:
    # the projection's 8 biases and the body conv's 8 each add to a 4x4x8 output
    block = "input 8x8x4\nresidual shortcut=B bias={} {{ conv3-8 s=2 bias={}; bn }}"
    plain, projection, body = (run(block.format(*b), convention).totals
                               for b in (("0", "0"), ("1", "0"), ("0", "1")))
    for biased in (projection, body):
        assert (biased.macs - plain.macs, biased.flops - plain.flops) == (macs, flops)


def test_misaligned_residual_warns_with_the_location() -> None:
    # the body's 2x2 stride-2 conv is centred on 0.5, the 1x1 projection on 0
    rep = run("input 8x8x4\n\nresidual shortcut=B { conv2-8 s=2 }")
    assert rep.warnings == ("t.arch:3:1: residual paths are misaligned (centre (0.5, 0.5) "
                            "stride 2; centre (0.0, 0.0) stride 2)",)


def test_nested_blocks_have_nested_paths_and_depths() -> None:
    rep = run("input 4x4x2\nconcat {\n branch { residual { conv3-2 } }\n branch { relu } }")
    assert [(r.path, r.depth) for r in rep.rows] == [
        ("1.b1.1.1", 2), ("1.b1.1", 1), ("1.b2.1", 1), ("1", 0)]


def test_residual_of_vectors() -> None:
    rep = run("input 8\nresidual { FC-8; relu }")
    assert rep.rows[-1].kind == "add" and rep.rows[-1].rf is None


# -- bad input found by the analysis, located to the column ---------------------------------
@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ("input 4x4x3\n  conv5-8 p=0", 2, 3,
         "kernel 5 is larger than the padded input height (4 + 2*0 = 4)"),
        ("input 4x4x3\nconv3-8\nmaxpool5 s=1", 3, 1,
         "kernel 5 is larger than the padded input height (4 + 2*0 = 4)"),
        ("input 8x8x6\nconv3-8 g=4", 2, 1,
         "groups=4 must divide both the input channels (6) and the output channels (8)"),
        ("input 8x8x4\n\n    residual { conv3-8 }", 3, 5,
         "residual body changes the shape 8x8x4 -> 8x8x8; an identity shortcut cannot"),
        ("input 4x4x2\nresidual shortcut=B { conv3-2 p=2 }", 2, 1,
         "shortcut gives 4x4x2 but the body gives 6x6x2; they cannot be added"),
        ("input 8x8x8\nresidual shortcut=A { conv3-4 }", 2, 1,
         "shortcut A can only add channels, not reduce 8 to 4"),
        ("input 10\nconv3-8", 2, 1, "conv needs a feature map (C, H, W) input, got a vector"),
        ("input 8x8x3\nflatten\n maxpool", 3, 2, "pool needs a feature map"),
        ("input 8x8x3\nconcat { branch { gap } branch { FC-3 } }", 2, 1,
         "concat branches must agree in height and width: 1x1x3, 3"),
        ("input 2x2x3\nmaxpool3 p=2", 2, 1, "pool padding 2 is more than half the kernel 3"),
    ],
)
def test_bad_graphs_are_located_to_the_column(text: str, line: int, col: int,
                                              message: str) -> None:
    err = fault(text)
    assert err.message.startswith(message), err.message
    assert err.loc is not None and (err.loc.file, err.loc.line, err.loc.col) == (
        "t.arch", line, col)
    caret = err.render().splitlines()[2]
    assert caret == "  " + " " * (col - 1) + "^"


def test_resnet18_receptive_field_at_16_px_keeps_the_body_stride() -> None:
    # By hand (r += (k-1)*j, j *= s): conv7/2 r=7 j=2; maxpool3/2 r=7+2*2=11 j=4; layer1,
    # four conv3: 11+4*2*4=43; layer2: 43+2*4=51 j=8, three more: 51+3*2*8=99; layer3:
    # 99+2*8=115 j=16, 115+3*2*16=211; layer4: 211+2*16=243 j=32, 243+3*2*32=435.
    # At 16 px layer4 runs on 1x1 maps; a shortcut stride guessed from ceil(1/1) = 1 used
    # to halve the field's stride there and report 371.
    rep = analyze(zoo.load("resnet18"), input_shape=(3, 16, 16))
    last_add = [r for r in rep.rows if r.kind == "add"][-1]
    assert last_add.rf is not None and last_add.rf.size == (435, 435)
    assert last_add.rf.stride == (32, 32)
    assert rep.warnings == ()
