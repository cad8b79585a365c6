if hs.status == "Healthy" and obj.status ~= nil and obj.status.mode ~= nil and obj.status.mode ~= "" then
  hs.message = "Egress " .. obj.status.mode .. ". " .. hs.message
end
return hs
