"""The inventory: load and validate inventory.yml, and render the pvc-ansible inventory."""
