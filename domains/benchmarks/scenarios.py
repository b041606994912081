"""The benchmark scenarios: stable ids -> file names in data/raw/itr-benchmarks.

A module of its own, free of pandas, because the partitions of ``intensity_pathways`` are built from
it when the code location loads (the transforms re-export it).
"""

# Every EI file is a distinct pathway set (they differ in values, sectors or scopes), so each is its
# own partition. Which one to use: OECM_1_5C is the full OECM 1.5 C release (S1, S2, S1S2, S3, S1S2S3;
# 23 sectors x 3 regions).
BENCHMARK_FILES: dict[str, str] = {
    "OECM_1_5C": "benchmark_EI_OECM_S3.json",  # OECM 1.5 C, all scopes, 2022 release
    "OECM_PC_1_5C": "benchmark_EI_OECM_PC.json",  # OECM 1.5 C, production-centric allocation (S1, S2, S1S2)
    "OECM_S3_ONLY_1_5C": "benchmark_EI_S3.json",  # earlier OECM 1.5 C scope-3-only cut (differs from OECM_1_5C)
    "OECM_LEGACY_1_5C": "benchmark_EI_OECM.json",  # legacy format: S1S2 steel + power only, t CO2
    "TPI_1_5C": "benchmark_EI_TPI_1_5_degrees.json",
    "TPI_below_2C": "benchmark_EI_TPI_below_2_degrees.json",  # 1.65 C, 646 Gt CO2
    "TPI_2C": "benchmark_EI_TPI_2_degrees.json",
    "TPI_2C_high_efficiency": "benchmark_EI_TPI_2_degrees_high_efficiency.json",  # airlines S1, autos S3
    "TPI_2C_shift_improve": "benchmark_EI_TPI_2_degrees_shift_improve.json",  # airlines S1, autos S3
}
