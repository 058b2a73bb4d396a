"""The analyst's job: faithful, audited enhancement (`vidrefocus enhance`, `vidrefocus verify`)."""
