"""widgets layer of imm_analysis."""
