"""Time `verifier scan --public-key` against `model_signing verify key` on the same signed model.

Generates N safetensors files of M MiB, signs the folder with model_signing's key method (the
signature is written beside the folder, since model_signing does not ignore it inside), warms
the page cache, then alternates R times between:
  baseline: `model_signing verify key` (the library's own CLI: it hashes the whole model);
  verifier: `verifier scan --signature ... --public-key ...` (hash, scan, verify the signature
            against the same one-pass digests, record, decide);
  verifier without a signature: the same scan with no signature check, to show its cost.
Prints the best time of each and the ratios.

Usage: python benchmarks/signature_verify.py [--files N] [--size-mb M] [--repeat R] [--dir D]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hash_throughput import timed, write_safetensors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: temp)")
    args = parser.parse_args()
    from model_signing import signing

    work = args.dir or Path(tempfile.mkdtemp(prefix="verifier-sigbench-"))
    model = work / "model"
    model.mkdir(parents=True, exist_ok=True)
    for i in range(args.files):
        path = model / f"model-{i:05d}.safetensors"
        if not path.exists() or path.stat().st_size < args.size_mb << 20:
            write_safetensors(path, args.size_mb)
    key = ec.generate_private_key(ec.SECP256R1())
    private, public, signature = work / "k.key", work / "k.pub", work / "model.sig"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    signing.Config().use_elliptic_key_signer(private_key=private).sign(model, signature)
    os.environ["VERIFIER_HOME"] = str(work / "home")
    baseline = [
        sys.executable, "-m", "model_signing", "verify", "key", str(model),
        "--signature", str(signature), "--public_key", str(public),
    ]  # fmt: skip
    scan = [sys.executable, "-m", "verifier", "scan", str(model), "--format", "json"]
    signed = [*scan, "--signature", str(signature), "--public-key", str(public)]
    timed(baseline)  # warm the page cache
    times: dict[str, list[float]] = {"baseline": [], "signed": [], "unsigned": []}
    for _ in range(args.repeat):
        times["baseline"].append(timed(baseline)[0])
        times["signed"].append(timed(signed)[0])
        times["unsigned"].append(timed(scan)[0])
    best = {name: min(values) for name, values in times.items()}
    total = args.files * args.size_mb
    print(f"files: {args.files} x {args.size_mb} MiB = {total} MiB, cores: {os.cpu_count()}")
    print(f"model_signing verify key:          {best['baseline']:.3f} s")
    print(f"verifier scan with the signature:  {best['signed']:.3f} s")
    print(f"verifier scan without a signature: {best['unsigned']:.3f} s")
    print(f"ratio verifier(signed)/model_signing: {best['signed'] / best['baseline']:.3f}")
    print(f"ratio verifier(signed)/verifier(unsigned): {best['signed'] / best['unsigned']:.3f}")
    if args.dir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
