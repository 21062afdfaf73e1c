"""report layer of imm_analysis."""
