"""mesh_assets: the platform library every domain of the mesh builds on."""

import warnings

import dagster as dg

# Domains use single-run backfills for partitioned products; the beta notice is platform noise.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
