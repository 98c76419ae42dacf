"""Install ganrepro: `pip install -e .` (add `[dev]` for the test tools)."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
REQUIREMENTS = [line.strip() for line in (HERE / "requirements.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")]

setup(
    name="ganrepro",
    version="0.1.0",
    description="Faithful, fast re-implementations of LR-GAN, StackGAN v1/v2, acVAE and RP-GAN",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["common", "common.*", "lrgan", "lrgan.*", "stackgan",
                                    "stackgan.*", "acvae", "acvae.*", "rpgan", "rpgan.*"]),
    install_requires=REQUIREMENTS,
    extras_require={"dev": ["pytest>=7", "pytest-timeout", "ninja"]},
)
