"""Write StackGAN-format caption embeddings from caption text (the char-CNN-RNN files are gone).

Split mode (CUB / flowers / COCO data directories):
  python scripts/stackgan_embed_captions.py --data-dir data/birds [--text-dir DIR] [--splits train test]
         [--encoder char-ngram|sentence-transformer] [--out DIR] [--only-present]
reads <data-dir>/<split>/filenames.pickle (and class_info.pickle) and <text-dir>/<key>.txt (one
caption per line; default <data-dir>/text, else <data-dir>/text_c10) and writes
<out>/<split>/<encoder>-embeddings.pickle: a float32 (images, captions, dim) array, pickle
protocol 2, index-aligned with filenames.pickle. Set EMBEDDING_TYPE to the encoder's name.
With --only-present, images without a caption file are left out and the shortened
filenames.pickle / class_info.pickle are written to --out (which must then be a new folder).

Caption-file mode (sampling from sentences, e.g. COCO example_captions.txt):
  python scripts/stackgan_embed_captions.py --captions example_captions.txt --out captions.npz|.pt

The embeddings are NOT the published char-CNN-RNN ones: scores of models trained on them are
not comparable with the papers' numbers.
"""
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from common import dist  # noqa: E402
from common.cli import (ArgumentParser, check_counts, check_output_file,  # noqa: E402
                        check_writable, write_output)
from common.data.t7captions import write_caption_file  # noqa: E402
from common.data.text_encoders import ENCODERS, get_encoder  # noqa: E402
from common.data.text_files import (EMBEDDING_FILES, load_captions, load_class_ids,  # noqa: E402
                                    load_filenames)
from common.errors import DataError, UserError  # noqa: E402


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", help="StackGAN data directory with <split>/filenames.pickle")
    p.add_argument("--text-dir", help="caption folder (<key>.txt); default <data-dir>/text")
    p.add_argument("--splits", nargs="+", default=["train", "test"])
    p.add_argument("--captions", help="a text file with one caption per line (caption-file mode)")
    p.add_argument("--out", help="output folder (split mode; default --data-dir) or .npz/.pt "
                                 "file (caption-file mode)")
    p.add_argument("--encoder", choices=ENCODERS, default="char-ngram")
    p.add_argument("--model", default="all-MiniLM-L6-v2",
                   help="sentence-transformers model name (--encoder sentence-transformer)")
    p.add_argument("--dim", type=int, default=1024, help="embedding size (TEXT.DIMENSION)")
    p.add_argument("--captions-per-image", type=int, default=0,
                   help="captions kept per image (default: the smallest count in the split)")
    p.add_argument("--only-present", action="store_true",
                   help="leave out images that have no caption file instead of failing")
    p.add_argument("--device", default=None, help="device of the sentence-transformers model")
    args = p.parse_args(argv)
    if bool(args.captions) == bool(args.data_dir):
        p.error("give either --data-dir (split mode) or --captions (caption-file mode)")
    if args.captions and not args.out:
        p.error("--captions needs --out FILE.npz or FILE.pt")
    return args


def find_text_dir(data_dir: Path, text_dir: str | None) -> Path:
    if text_dir:
        return Path(text_dir)
    for name in ("text", "text_c10"):
        if (data_dir / name).is_dir():
            return data_dir / name
    raise DataError(f"{data_dir}: no caption folder text/ or text_c10/; pass --text-dir")


def embed_split(encoder, data_dir: Path, text_dir: Path, split: str, out: Path,
                only_present: bool, per_image: int) -> str:
    split_dir = data_dir / split
    names = load_filenames(split_dir)
    classes = load_class_ids(split_dir, len(names))
    keep = [i for i, key in enumerate(names) if (text_dir / f"{key}.txt").is_file()]
    if len(keep) < len(names):
        first = next(k for k in names if not (text_dir / f"{k}.txt").is_file())
        if not only_present:
            raise DataError(f"{text_dir}: {len(names) - len(keep)} of {len(names)} caption files "
                            f"of the {split} split are missing (first {first}.txt); pass "
                            "--only-present to embed the others")
        if not keep:
            raise DataError(f"{text_dir}: none of the {split} split's caption files exist")
    captions = [load_captions(text_dir / f"{names[i]}.txt") for i in keep]
    empty = [names[i] for i, c in zip(keep, captions) if not c]
    if empty:
        raise DataError(f"{text_dir / empty[0]}.txt: no caption in the file")
    count = per_image or min(len(c) for c in captions)
    short = [names[i] for i, c in zip(keep, captions) if len(c) < count]
    if short:
        raise DataError(f"{text_dir / short[0]}.txt: fewer than {count} captions "
                        "(lower --captions-per-image)")
    flat = [c for caps in captions for c in caps[:count]]
    vectors = encoder.encode(flat).reshape(len(keep), count, -1)
    target = out / split
    dump_pickle(target / EMBEDDING_FILES[encoder.name], vectors.astype(np.float32))
    if out.resolve() != data_dir.resolve():
        dump_pickle(target / "filenames.pickle", [names[i] for i in keep])
        if (split_dir / "class_info.pickle").is_file():
            dump_pickle(target / "class_info.pickle", [int(classes[i]) for i in keep])
    dropped = len(names) - len(keep)
    note = f", {dropped} images without captions left out" if dropped else ""
    return (f"{target / EMBEDDING_FILES[encoder.name]}: {vectors.shape[0]} images x "
            f"{count} captions x {vectors.shape[2]}{note}")


def dump_pickle(path: Path, value) -> None:
    """Protocol 2 (the originals read it under Python 2), written atomically."""
    write_output(path, lambda tmp: tmp.write_bytes(pickle.dumps(value, protocol=2)))


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_counts(args, positive=("dim",), non_negative=("captions_per_image",))
        device = dist.resolve_device(args.device) if args.device else None
        if args.captions:
            check_output_file(args.out)
        else:
            check_writable(Path(args.out or args.data_dir), f"{args.out or args.data_dir}: the "
                           "output folder")
        encoder = get_encoder(args.encoder, args.dim, args.model, device)
        if args.captions:
            texts = load_captions(args.captions)
            if not texts:
                raise DataError(f"{args.captions}: no caption in the file")
            path = write_caption_file(args.out, texts, encoder.encode(texts))
            print(f"wrote {path}: {len(texts)} captions x {args.dim} ({encoder.name})")
            return 0
        data_dir = Path(args.data_dir)
        out = Path(args.out) if args.out else data_dir
        if args.only_present and out.resolve() == data_dir.resolve():
            raise DataError(f"{out}: --only-present rewrites filenames.pickle; pass --out with a "
                            "new folder so the original split lists stay intact")
        text_dir = find_text_dir(data_dir, args.text_dir)
        for split in args.splits:
            print("wrote " + embed_split(encoder, data_dir, text_dir, split, out,
                                         args.only_present, args.captions_per_image))
        print(f"set EMBEDDING_TYPE: '{encoder.name}' (DATA_DIR: {out}); these embeddings are "
              "not the published char-CNN-RNN ones")
    except (UserError, ImportError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
