"""cluster layer of imm_analysis."""
