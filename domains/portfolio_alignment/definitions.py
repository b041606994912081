from domains.portfolio_alignment import assets
from mesh_assets.definitions import build_domain_definitions

defs = build_domain_definitions("portfolio_alignment", assets)
