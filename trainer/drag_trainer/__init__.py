"""DRAG Studio's trainer: LoRA SFT, DPO and merge for Qwen-VL models.

Importing this package and running ``python -m drag_trainer --help`` need only the standard
library, so a host can be checked before anything is installed; torch, transformers and peft are
imported inside the commands that use them.
"""

__version__ = "0.1.0"
