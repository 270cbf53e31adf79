"""The published file name of the post-processing script: `python post_process_gnoise.py ...`.

The authors' repository names the script post_process_gnoise.py while its README runs
post_processing_gnoise.py; both names run the same code (post_processing_gnoise.py).
"""
import sys

from post_processing_gnoise import main

if __name__ == "__main__":
    sys.exit(main())
