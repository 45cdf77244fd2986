"""`fakescope export`: a model's network as one ONNX file (fp32, or int8-quantised), recorded in
its folder's config.json for `--backend onnx`; the work is in `fakescope.export`."""

from __future__ import annotations

from fakescope import argtypes
from fakescope.cli.options import subcommand


def add_parser(sub) -> None:
    o = subcommand(
        sub,
        "export",
        "export a model's network to ONNX (the torch-free backend; needs the 'onnx' extra)",
        "fakescope export --model runs/mine",
        "fakescope export --model photo-effnet-lite2 --out photo-effnet-lite2.onnx",
        "fakescope export --model runs/mine --int8 --calibration-data train.tar --out m.int8.onnx",
        details="One file, dynamic batch dimension, uint8 NHWC input with the conversion and "
        "normalisation inside the graph; tiling and tile aggregation stay in fakescope's "
        "shared pre/post-processing. Written into a model folder, it is recorded in the "
        "folder's config.json and used by --backend onnx / auto.",
    )
    o.add_argument("--format", choices=["onnx"], default="onnx", help="(default: onnx)")
    o.add_argument(
        "--model",
        required=True,
        help="shipped model name or run folder (a routing model such as 'auto' has no network "
        "of its own: export each model it names)",
    )
    o.add_argument(
        "--out",
        metavar="FILE",
        help="output file (default: model.onnx in the model's folder, which records it in the "
        "folder's config.json so --backend onnx can use it; a shipped model's folder is part "
        "of the installed package and is never written: give --out for those)",
    )
    o.add_argument(
        "--opset", type=argtypes.positive_int, default=18, help="ONNX opset (default: 18)"
    )
    o.add_argument(
        "--exporter",
        choices=["dynamo", "torchscript"],
        default="dynamo",
        help="torch.onnx exporter (default: dynamo)",
    )
    q = o.add_argument_group("int8 quantisation (the fastest CPU path)")
    q.add_argument(
        "--int8",
        action="store_true",
        help="write a statically quantised graph (default file: model.int8.onnx, the "
        "onnx-int8 backend)",
    )
    q.add_argument(
        "--calibration-data",
        nargs="+",
        metavar="PATH",
        help="labelled training images to calibrate activation ranges on (never test data)",
    )
    q.add_argument(
        "--calibration-n",
        type=argtypes.positive_int,
        default=2048,
        help="images, stratified (default: 2048)",
    )
    q.add_argument(
        "--calibration-method",
        choices=["minmax", "percentile", "entropy"],
        default="minmax",
        help="(default: minmax)",
    )
    o.set_defaults(func=run)


def run(args) -> int:
    from fakescope.export import export_onnx

    r = export_onnx(
        args.model,
        args.out,
        opset=args.opset,
        exporter=args.exporter,
        int8=args.int8,
        calibration_data=args.calibration_data,
        calibration_n=args.calibration_n,
        calibration_method=args.calibration_method,
    )
    where = " (recorded in the model's config.json)" if r["recorded_in_config"] else ""
    print(f"written: {r['path']}{where}\nopset {r['opset']}, sha256 {r['sha256']}")
    if "quantization" in r:
        q = r["quantization"]
        print(
            f"int8: verdicts agree with fp32 on {q['verdict_agreement_with_fp32']:.2%} of "
            f"{q['calibration_arrays']} calibration arrays (max |Δ prob_fake| "
            f"{q['max_abs_prob_diff_vs_fp32']:.3f})"
        )
    else:
        print(f"max |logit - torch| {r['max_abs_logit_diff_vs_torch']:.1e} on random inputs")
    return 0
