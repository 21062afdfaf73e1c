"""viz layer of imm_analysis."""
