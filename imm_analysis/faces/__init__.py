"""faces layer of imm_analysis."""
