"""Output names and CSV headers of the published scripts (DiffVel_CMMR2023, commit 00c0542).

The paper protocol writes exactly these, so scripts written against the authors' outputs keep
working; the corrected protocol keeps the clearer names of utils/evaluation.py and the scripts.
README, "Published column names", says what each published column really holds.
"""

# run_test.py: <inference_result_path>/diffvel_baseline/diffvel_base_shift_<shift>-<time>.csv
# (the published script names the folder `model_info` and hard-codes the CSV stem)
RUN_TEST_RESULT_FOLDER = "diffvel_baseline"
RUN_TEST_CSV_STEM = "diffvel_base"
RUN_TEST_HEADER = (
    "g_means", "g_stds", "test_h5", "frame_max_error", "std_max_error", "mean_error_correct_detection",
    "std_error_correct_detection", "average_precision_score", "f1_score", "precision_score", "recall_score",
    "precision_support", "recall_support", "f1_support",
)

# post_process_gnoise.py: OUT/outputs/result/diffvel_film-<time>.csv
POSTPROCESS_CSV_STEM = "diffvel_film"
POSTPROCESS_HEADER = (
    "test_h5", "frame_max_error", "std_max_error", "mean_error_correct_detection", "std_error_correct_detection",
    "recall_score", "recall_support", "z_score",
)
# the folders the published script creates under OUT/outputs (it writes only into `result`)
POSTPROCESS_FOLDERS = ("pair_pkl", "error_profile", "noise_visualization", "chart", "result", "maestro")
