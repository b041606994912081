from domains.companies import assets
from mesh_assets.definitions import build_domain_definitions

defs = build_domain_definitions("companies", assets)
