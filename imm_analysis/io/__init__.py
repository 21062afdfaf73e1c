"""io layer of imm_analysis."""
